#!/usr/bin/env python3
"""A unixgram network peer for tests/net.sh, as gvproxy's vfkit mode is one: it binds a unix datagram socket at PATH,
creates the tap device NAME with IFF_TAP|IFF_NO_PI, and moves frames both ways, one per datagram; replies go to the
address the last datagram came from (jkrun's own bound socket). A 4-byte "VFKT" handshake datagram is not a frame.
Usage: tap-peer.py PATH NAME (runs until killed)."""
import fcntl, os, select, socket, struct, sys

path, name = sys.argv[1], sys.argv[2]
TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000
tap = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tap, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
peer = None
while True:
    ready, _, _ = select.select([s, tap], [], [])
    if s in ready:
        frame, peer = s.recvfrom(65536)
        if frame != b"VFKT":
            os.write(tap, frame)
    if tap in ready:
        frame = os.read(tap, 65536)
        if peer is not None:
            try:
                s.sendto(frame, peer)
            except OSError:
                pass
