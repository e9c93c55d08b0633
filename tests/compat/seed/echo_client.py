# The seed's echo client, ported to Python 3: input() for raw_input(), bytes on the
# socket, print() as a function, the port from argv, and a clean exit at end of input.
import socket
import sys

ip_port = ("127.0.0.1", int(sys.argv[1]))
sk = socket.socket()
sk.connect(ip_port)
sk.settimeout(5)
while True:
    try:
        inp = input("please input:")
    except EOFError:
        break
    sk.sendall(inp.encode())
    print(sk.recv(1024).decode())

sk.close()
