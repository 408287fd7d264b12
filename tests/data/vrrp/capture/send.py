import socket,sys,time
# usage: send.py HEX COUNT INTERVAL
b=bytes.fromhex(sys.argv[1]); n=int(sys.argv[2]); iv=float(sys.argv[3])
s=socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"vB")
for i in range(n):
    s.sendto(b,("224.0.0.18",0)); time.sleep(iv)
