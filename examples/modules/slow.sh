#!/bin/sh
# Sleeps for the "seconds" parameter (default 2), then answers "done".
seconds=$(sed -n 's/.*"seconds": *\([0-9][0-9]*\).*/\1/p')
sleep "${seconds:-2}"
echo '"done"'
