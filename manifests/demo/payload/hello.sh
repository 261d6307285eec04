#!/bin/sh
# The demo payload: proves the image's environment and files are what the manifest says.
echo "hello from envpin: GREETING=$GREETING"
echo "files under /opt/demo:"
ls /opt/demo
