import struct,sys
d=open(sys.argv[1],'rb').read()
magic=struct.unpack('<I',d[:4])[0]
assert magic in (0xa1b2c3d4,0xa1b23c4d), hex(magic)
lt=struct.unpack('<I',d[20:24])[0]
off=24
while off<len(d):
    ts,tu,incl,orig=struct.unpack('<IIII',d[off:off+16]); off+=16
    p=d[off:off+incl]; off+=incl
    if lt==1: p=p[14:]
    elif lt==113: p=p[16:]
    print("%d.%06d %s"%(ts,tu,p.hex()))
