#!/usr/bin/python3
"""A fixed camera for the RTSP ingest tests: GStreamer's RTSP server
(gst-rtsp-server through python3-gst-1.0) serving rtsp://127.0.0.1:PORT/cam
with H.264 video, AAC audio and G.711 (PCMU) audio, encoded live by x264,
avenc_aac and mulawenc. With USER and PASSWORD, only those credentials may
play it (HTTP Basic over RTSP).

usage: rtsp_camera.py PORT [USER PASSWORD]
Prints "ready" once it listens."""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
port = sys.argv[1]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    "( videotestsrc is-live=true pattern=ball "
    "! video/x-raw,width=320,height=180,framerate=25/1 "
    "! x264enc tune=zerolatency key-int-max=25 bitrate=400 "
    "! rtph264pay name=pay0 pt=96 "
    "audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=1 "
    "! avenc_aac ! rtpmp4gpay name=pay1 pt=97 "
    "audiotestsrc is-live=true wave=sine freq=880 ! audio/x-raw,rate=8000,channels=1 "
    "! mulawenc ! rtppcmupay name=pay2 pt=0 )"
)
factory.set_shared(True)
if len(sys.argv) == 4:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "camera-user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(sys.argv[2], sys.argv[3]), token)
    server.set_auth(auth)
    perms = GstRtspServer.RTSPPermissions()
    perms.add_role_from_structure(
        Gst.Structure.new_from_string(
            "camera-user, media.factory.access=(boolean)true, "
            "media.factory.construct=(boolean)true"
        )
    )
    factory.set_permissions(perms)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    sys.exit("cannot listen on port " + port)
print("ready", flush=True)
GLib.MainLoop().run()
