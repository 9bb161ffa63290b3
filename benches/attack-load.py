#!/usr/bin/env python3
"""The attacks of the hardening issue, replayed against a running Postern, each while a real
user logs in; prints one line per measurement and one per check, exit 1 when a check fails.

Run by benches/attack.sh, which starts Postern with argon2id users. Real users: user0001 over
HTTP from 127.0.0.2 and over dovecot-auth with rip 198.51.100.1 (the one whose delay is
measured), user0003 (sprayed from 100 addresses), user0004 (guessed from one address).

A real login under attack must answer OK within --margin seconds (default 1) of its median time
on the idle daemon, measured first.
"""
import argparse
import base64
import json
import socket
import statistics
import sys
import threading
import time
import urllib.request

FAILED = []


def check(what, ok):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        FAILED.append(what)


def host_port(s):
    h, p = s.rsplit(":", 1)
    return h, int(p)


def http_request(a, source, method, path, body=None, headers=None, timeout=30):
    """One request on a fresh connection from SOURCE; (status, body bytes)."""
    s = socket.create_connection(host_port(a.http), timeout=timeout, source_address=(source, 0))
    try:
        hdrs = {"Host": a.http, "Connection": "close"}
        hdrs.update(headers or {})
        data = body or b""
        if body is not None:
            hdrs["Content-Length"] = str(len(data))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        s.sendall(head.encode() + b"\r\n" + data)
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
        raw = b"".join(chunks)
        status = int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/") else 0
        return status, raw.split(b"\r\n\r\n", 1)[-1]
    finally:
        s.close()


def login_body(user, password):
    return json.dumps({"username": user, "password": password}).encode()


def http_login(a, source, user, password):
    return http_request(a, source, "POST", "/auth/login", login_body(user, password),
                        {"Content-Type": "application/json"})[0]


def plain(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def dovecot_open(path):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    s.connect(path)
    s.sendall(b"VERSION\t1\t2\nCPID\t4242\n")
    f = s.makefile("rb")
    for line in f:
        if line.startswith(b"DONE"):
            return s, f
    raise OSError("dovecot-auth handshake ended early")


def dovecot_login(a, rip, user, password):
    s, f = dovecot_open(a.socket)
    try:
        s.sendall(f"AUTH\t1\tPLAIN\tservice=imap\tsecured\trip={rip}\tresp={plain(user, password)}\n"
                  .encode())
        return f.readline().split(b"\t", 1)[0].decode()
    finally:
        s.close()


def timed(fn, *args):
    t = time.monotonic()
    r = fn(*args)
    return r, time.monotonic() - t


def real_logins(a):
    """The real user's two logins; [(front-end, answer, seconds)]."""
    http, th = timed(http_login, a, "127.0.0.2", "user0001", "pw-1-bench")
    dov, td = timed(dovecot_login, a, "198.51.100.1", "user0001", "pw-1-bench")
    return [("http", http == 200, th), ("dovecot-auth", dov == "OK", td)]


def metric(a, name):
    _, body = http_request(a, "127.0.0.2", "GET", "/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


def under_attack(a, name, base, attack, settle=0.3):
    """Starts ATTACK in a thread, waits SETTLE seconds, measures the real user's logins."""
    t = threading.Thread(target=attack, daemon=True)
    t.start()
    time.sleep(settle)
    for fe, ok, secs in real_logins(a):
        print(f"{name:<16} {fe:<13} {secs * 1000:8.1f} ms (idle median {base[fe] * 1000:.1f} ms)",
              flush=True)
        check(f"{name}: the real user's {fe} login answers OK "
              f"within {a.margin:.0f} s of its idle time", ok and secs <= base[fe] + a.margin)
    t.join(timeout=120)


def hangups(a):
    """Finding 1: 500 POST /auth/login whose sockets close right after sending."""
    body = login_body("user0002", "wrong-password")
    head = (f"POST /auth/login HTTP/1.1\r\nHost: {a.http}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    for _ in range(500):
        try:
            s = socket.create_connection(host_port(a.http), timeout=5,
                                         source_address=("127.0.0.9", 0))
            s.sendall(head + body)
            s.close()
        except OSError:
            pass


def cancels(a):
    """Finding 1: one dovecot-auth connection sending 2,000 × (AUTH with credentials, CANCEL)."""
    s, f = dovecot_open(a.socket)
    batch = "".join(f"AUTH\t{i}\tPLAIN\tservice=imap\tsecured\trip=192.0.2.67"
                    f"\tresp={plain('user0002', 'pw-2-bench')}\nCANCEL\t{i}\n"
                    for i in range(1, 2001))
    try:
        s.sendall(batch.encode())
        time.sleep(3)
    finally:
        s.close()


def spray(a):
    """Finding 2: 100 wrong passwords for user0003 at once from 100 addresses."""
    answers, lock, go = [], threading.Lock(), threading.Barrier(100)

    def one(i):
        go.wait()
        try:
            st = http_login(a, f"127.0.1.{i + 1}", "user0003", f"guess-{i}")
        except OSError:
            st = 0
        with lock:
            answers.append(st)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(100)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return answers


def drips(a, n, conns):
    """Finding 4: N connections from one address dripping a request head a byte a second, and
    one chunked body that never ends."""
    for i in range(n):
        try:
            s = socket.create_connection(host_port(a.http), timeout=5,
                                         source_address=("127.0.2.1", 0))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            conns.append(s)
        except OSError:
            pass
    try:
        s = socket.create_connection(host_port(a.http), timeout=5,
                                     source_address=("127.0.3.1", 0))
        s.sendall(b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n")
        conns.append(s)
    except OSError:
        pass
    for _ in range(10):
        for s in list(conns):
            try:
                s.send(b"X")
            except OSError:
                conns.remove(s)
        time.sleep(1)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--http", required=True, help="HOST:PORT of the HTTP listener")
    p.add_argument("--socket", required=True, help="dovecot-auth unix socket")
    p.add_argument("--margin", type=float, default=1.0)
    a = p.parse_args()

    # Idle: the real users log in (user0003 from its own address, so that address is
    # known-good when the spray puts the account under attack).
    check("user0003 logs in from 127.0.0.3 before the spray",
          http_login(a, "127.0.0.3", "user0003", "pw-3-bench") == 200)
    samples = {"http": [], "dovecot-auth": []}
    for _ in range(7):
        for fe, ok, secs in real_logins(a):
            check(f"idle: the real user's {fe} login answers OK", ok)
            samples[fe].append(secs)
    base = {fe: statistics.median(v) for fe, v in samples.items()}
    for fe, v in base.items():
        print(f"{'idle':<16} {fe:<13} {v * 1000:8.1f} ms (median of 7)", flush=True)

    rejected0 = metric(a, "postern_password_hash_rejected_total")
    under_attack(a, "500 hang-ups", base, lambda: hangups(a))
    under_attack(a, "2000 AUTH+CANCEL", base, lambda: cancels(a))
    rejected = metric(a, "postern_password_hash_rejected_total") - rejected0
    print(f"hash jobs refused by the queue's bounds during the floods: {rejected:.0f}")
    check("the floods were bounded: hash jobs were refused", rejected > 0)
    time.sleep(3)
    check("the hang-ups counted as failures: 127.0.0.9 is throttled now",
          http_login(a, "127.0.0.9", "user0002", "pw-2-bench") == 429)

    answers = spray(a)
    n401, n429 = answers.count(401), answers.count(429)
    print(f"100 concurrent wrong passwords for user0003: {n401} × 401, {n429} × 429, "
          f"{100 - n401 - n429} other")
    check("the spray is stopped at the account's total limit (at most 20 × 401)", n401 <= 20)
    check("the owner logs in from the known-good address during the attack",
          http_login(a, "127.0.0.3", "user0003", "pw-3-bench") == 200)

    for i in range(10):
        http_login(a, "127.0.0.66", "user0004", f"guess-{i}")
    check("after 10 wrong passwords from 127.0.0.66, the owner logs in from 127.0.0.4",
          http_login(a, "127.0.0.4", "user0004", "pw-4-bench") == 200)
    check("… while 127.0.0.66 is refused",
          http_login(a, "127.0.0.66", "user0004", "pw-4-bench") == 429)
    # Throttle keys are case-folded: the name in capitals is the same account to the lock.
    check("… also when it types USER0004",
          http_login(a, "127.0.0.66", "USER0004", "pw-4-bench") == 429)

    conns = []
    t = threading.Thread(target=drips, args=(a, 500, conns), daemon=True)
    t.start()
    time.sleep(2)
    st, secs = timed(lambda: http_request(a, "127.0.0.2", "GET", "/healthz", timeout=10)[0])
    print(f"{'500 drips':<16} {'/healthz':<13} {secs * 1000:8.1f} ms")
    check("/healthz answers 200 within a second while 500 connections drip", st == 200 and secs < 1)
    under_attack(a, "500 drips", base, lambda: None, settle=0)
    t.join()
    for s in conns:
        s.close()

    if FAILED:
        print(f"{len(FAILED)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
