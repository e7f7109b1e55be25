"""Drives an interactive program on a real pseudo-terminal for the SSH proxy tests.

usage: pty-driver.py '<argv as JSON>' '<steps as JSON>'
steps: {"wait": text} waits (10 s) for text in the output after the last wait,
       {"send": text} types text, {"resize": [cols, rows]} resizes the terminal,
       {"sleep": seconds} reads output for a while (lets ssh forward a resize before more input).
Prints everything the terminal showed, base64-encoded, on stdout; exits 3 on a wait timeout.
"""
import base64, fcntl, json, os, pty, select, struct, sys, termios, time

argv = json.loads(sys.argv[1])
steps = json.loads(sys.argv[2])

def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))

pid, fd = pty.fork()
if pid == 0:
    set_size(0, 100, 30)
    os.execvp(argv[0], argv)

out = bytearray()
mark = 0

def pump(timeout):
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return True
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        return False
    if not chunk:
        return False
    out.extend(chunk)
    return True

status = 0
for step in steps:
    if 'send' in step:
        os.write(fd, step['send'].encode())
    elif 'sleep' in step:
        end = time.time() + step['sleep']
        while time.time() < end and pump(end - time.time()):
            pass
    elif 'resize' in step:
        set_size(fd, step['resize'][0], step['resize'][1])
    elif 'wait' in step:
        want = step['wait'].encode()
        deadline = time.time() + step.get('timeout', 10)
        while want not in out[mark:]:
            left = deadline - time.time()
            if left <= 0 or not pump(left):
                break
        found = out.find(want, mark)
        if found < 0:
            sys.stderr.write('timed out waiting for %r\n' % step['wait'])
            status = 3
            break
        mark = found + len(want)
deadline = time.time() + 10
while time.time() < deadline and pump(deadline - time.time()):
    pass
try:
    os.kill(pid, 9)
except OSError:
    pass
sys.stdout.write(base64.b64encode(bytes(out)).decode())
sys.exit(status)
