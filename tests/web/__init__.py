"""The http plugin's tests: a package named ``web`` so that it does not shadow the stdlib's ``http``."""
