#!/usr/bin/python3
"""Drives libtorrent (Debian's python3-libtorrent 2.0.8) in-process for the confluence-ts tests.

Run with /usr/bin/python3 (the only interpreter that has the binding):

    lt_peer.py seed   --torrent T --save-path DIR [common options] [--connect H:P]... [--skip-check]
    lt_peer.py leech (--torrent T | --magnet M) --save-path DIR [--peer H:P]... [--timeout S]
                      [--keep-seeding] [common options]
    lt_peer.py dht    [--bootstrap H:P]... [--host H] [--port P]
    lt_peer.py create --data-dir DIR --files-json JSON --piece-length N --out T [--tracker URL]...

common: --host 127.0.0.1 --port 0 --transport both|tcp|utp
        --encryption plain|prefer-plain|prefer-encrypted|require --upload-limit B/s
        --download-limit B/s --tracker URL... --pex on|off --dht-node H:P... --status-interval S

stdout is JSON lines: first {"event":"ready","port":...,"pid":...,...} (or {"event":"error"} and a
non-zero exit), then "status" lines every --status-interval seconds and on request, "done" (leech),
"lookup" (dht) and finally "stopped". stdin takes JSON-line commands:
    {"cmd":"status","id":N}   {"cmd":"connect","peer":"127.0.0.1:P","id":N}
    {"cmd":"lookup","infohash":HEX,"timeout":S,"id":N}   (dht mode)
    {"cmd":"put","v":HEX,"timeout":S,"id":N}   (dht mode; BEP 44 immutable, v = bencoded value)
    {"cmd":"put","v":HEX,"publicKey":HEX,"secretKey":HEX,"salt":HEX,"timeout":S,"id":N}
        (dht mode; BEP 44 mutable: v is the byte string stored, keys are ed25519 (32-byte public,
        64-byte expanded secret as libtorrent takes it), salt optional)
Replies carry the command's id. EOF on stdin, SIGTERM, SIGINT or the death of the parent process
(PR_SET_PDEATHSIG) stop the driver cleanly.

Every address option must be loopback (127.0.0.0/8 or ::1); so must every tracker, web seed,
peer and DHT node inside the .torrent or magnet. libtorrent's own defaults reach the internet
(DHT bootstrap at dht.libtorrent.org, LSD, UPnP, NAT-PMP), so the session is created with its
settings in the constructor and never runs with those defaults, not even for a moment.
"""

import argparse
import ctypes
import hashlib
import ipaddress
import json
import os
import queue
import signal
import sys
import threading
import time
import urllib.parse

import libtorrent as lt

EXIT_OK, EXIT_VERIFY_FAILED, EXIT_USAGE, EXIT_CLIENT, EXIT_LISTEN, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 124

# (out_enc_policy, in_enc_policy, allowed_enc_level, prefer_rc4); policy 0 forced, 1 enabled,
# 2 disabled; level 1 plaintext, 2 rc4, 3 both.
ENCRYPTION = {
    "plain": (2, 2, 1, False),
    "prefer-plain": (2, 1, 3, False),
    "prefer-encrypted": (1, 1, 3, True),
    "require": (0, 0, 2, True),
}
# Constants the binding does not export by name.
UTP_SOCKET = 0x20000  # peer_info flag
PEER_SOURCE_RESUME_DATA = 16
PEX_ENCRYPTION = 1
STATE_NAMES = {1: "checking", 2: "metadata", 3: "downloading", 4: "finished", 5: "seeding",
               7: "checking"}
CONNECT_EVERY_S = 2.0
SOCKET_BUFFER = 4 * 1024 * 1024
# 0 is not "unlimited" here: libtorrent 2.0.8 dies with SIGFPE on the first DHT packet.
DHT_UPLOAD_LIMIT = 10 * 1024 * 1024


class Stop(Exception):
    """Raised by the signal handler to unwind the main loop."""


class Failure(Exception):
    def __init__(self, message, code=EXIT_CLIENT):
        super().__init__(message)
        self.code = code


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def log(msg):
    sys.stderr.write("lt_peer: %s\n" % msg)
    sys.stderr.flush()


def die_with_parent():
    PR_SET_PDEATHSIG = 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log("prctl(PR_SET_PDEATHSIG) failed: errno %d" % ctypes.get_errno())


# ---- loopback checks -------------------------------------------------------------------------

def is_loopback(host):
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_host(host, what):
    if not is_loopback(host):
        raise Failure("%s %r is not a literal loopback address" % (what, host), EXIT_USAGE)
    return host.strip("[]")


def loopback_hostport(s, what):
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise Failure("%s %r is not host:port" % (what, s), EXIT_USAGE)
    return loopback_host(host, what), int(port)


def loopback_url(url, what):
    try:
        u = urllib.parse.urlsplit(url)
        host = u.hostname or ""
    except ValueError:
        host = ""
        u = None
    if u is None or u.scheme not in ("http", "https", "udp") or not is_loopback(host):
        raise Failure("%s %r is not a loopback http/https/udp URL" % (what, url), EXIT_USAGE)
    return url


def check_torrent_info(ti):
    for t in ti.trackers():
        loopback_url(t.url, "tracker in the .torrent")
    for w in ti.web_seeds():
        loopback_url(w["url"], "web seed in the .torrent")
    for host, port in ti.nodes():
        loopback_host(host, "DHT node in the .torrent")


def check_magnet_params(atp):
    for t in atp.trackers:
        loopback_url(t, "tracker in the magnet")
    for u in atp.url_seeds:
        loopback_url(u, "web seed in the magnet")
    for host, _ in atp.peers:
        loopback_host(host, "x.pe peer in the magnet")
    for host, _ in atp.dht_nodes:
        loopback_host(host, "DHT node in the magnet")


# ---- session ---------------------------------------------------------------------------------

def session_settings(a, dht=False):
    transport = a.transport
    host = "[%s]" % a.host if ":" in a.host else a.host
    out_enc, in_enc, level, prefer_rc4 = ENCRYPTION[a.encryption]
    s = {
        "listen_interfaces": "%s:%d" % (host, a.port),
        "listen_system_port_fallback": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_dht": bool(dht or a.dht_node),
        "dht_bootstrap_nodes": ",".join("%s:%d" % n for n in a.dht_node),
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False,
        "dht_ignore_dark_internet": False,
        "dht_upload_rate_limit": DHT_UPLOAD_LIMIT,
        "allow_multiple_connections_per_ip": True,
        "enable_incoming_tcp": transport in ("both", "tcp"),
        "enable_outgoing_tcp": transport in ("both", "tcp"),
        "enable_incoming_utp": transport in ("both", "utp"),
        "enable_outgoing_utp": transport in ("both", "utp"),
        "out_enc_policy": out_enc,
        "in_enc_policy": in_enc,
        "allowed_enc_level": level,
        "prefer_rc4": prefer_rc4,
        "ssrf_mitigation": False,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "stop_tracker_timeout": 1,
        "min_reconnect_time": 1,
        "peer_connect_timeout": 5,
        "smooth_connects": False,
        # Peers are dialled on the session tick: 500 ms by default, most of a small test transfer.
        "tick_interval": 100,
        "seeding_outgoing_connections": True,
        "user_agent": "confluence-ts-harness libtorrent/%s" % lt.__version__,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
        | lt.alert.category_t.storage_notification | lt.alert.category_t.dht_operation_notification
        | lt.alert.category_t.stats_notification | lt.alert.category_t.connect_notification,
        # uTP at loopback speed drops packets with the OS default UDP buffers (208 KiB).
        "recv_socket_buffer_size": SOCKET_BUFFER,
        "send_socket_buffer_size": SOCKET_BUFFER,
        "send_buffer_watermark": SOCKET_BUFFER,
    }
    if dht:
        # dht_put_alert (BEP 44 put results) is in the plain DHT category.
        s["alert_mask"] |= lt.alert.category_t.dht_notification
    if a.upload_limit or a.download_limit:
        # Loopback peers are "local" and exempt from limits unless told otherwise.
        s["ignore_limits_on_local_network"] = False
        s["upload_rate_limit"] = a.upload_limit
        s["download_rate_limit"] = a.download_limit
    return s


def open_session(a, dht=False):
    ses = lt.session(session_settings(a, dht))
    want = set()
    if a.transport in ("both", "tcp"):
        want.add("tcp")
    if a.transport in ("both", "utp") or dht or a.dht_node:
        want.add("udp")
    got = {}
    deadline = time.monotonic() + 10
    while want - set(got) and time.monotonic() < deadline:
        for al in ses.pop_alerts():
            if isinstance(al, lt.listen_failed_alert):
                raise Failure("cannot listen: %s" % al.message(), EXIT_LISTEN)
            if isinstance(al, lt.listen_succeeded_alert):
                kind = "tcp" if al.socket_type == lt.socket_type_t.tcp else "udp"
                got[kind] = al.port
        time.sleep(0.02)
    if want - set(got):
        raise Failure("libtorrent did not report listening (%s)" % ", ".join(sorted(want - set(got))), EXIT_LISTEN)
    ports = set(got.values())
    if len(ports) != 1:
        raise Failure("TCP and UDP listen on different ports %r" % got, EXIT_LISTEN)
    return ses, ports.pop()


def add_params(a):
    if a.torrent:
        ti = lt.torrent_info(a.torrent)
        check_torrent_info(ti)
        atp = lt.add_torrent_params()
        atp.ti = ti
        expected = str(ti.info_hash())
    else:
        atp = lt.parse_magnet_uri(a.magnet)
        check_magnet_params(atp)
        expected = str(atp.info_hash)
    atp.save_path = os.path.abspath(a.save_path)
    atp.trackers = list(atp.trackers) + list(a.tracker)
    atp.flags &= ~lt.torrent_flags.auto_managed
    atp.flags &= ~lt.torrent_flags.paused
    if getattr(a, "skip_check", False):
        atp.flags |= lt.torrent_flags.seed_mode
    if a.pex == "off":
        atp.flags |= lt.torrent_flags.disable_pex
    return atp, expected


def peer_list(h):
    """Established connections (not those still connecting or handshaking)."""
    out = []
    for p in h.get_peer_info():
        if p.flags & (lt.peer_info.connecting | lt.peer_info.handshake):
            continue
        client = p.client.decode("utf-8", "replace") if isinstance(p.client, bytes) else p.client
        out.append({
            "address": "%s:%d" % (p.ip[0], p.ip[1]),
            "client": client,
            "utp": bool(p.flags & UTP_SOCKET),
            "encrypted": bool(p.flags & (lt.peer_info.rc4_encrypted | lt.peer_info.plaintext_encrypted)),
        })
    return out


def torrent_status(h):
    st = h.status()
    return {
        "state": STATE_NAMES.get(int(st.state), str(st.state)),
        "progress": float(st.progress),
        "hasMetadata": bool(st.has_metadata),
        "seeding": bool(st.is_seeding),
        "uploaded": int(st.total_payload_upload),
        "downloaded": int(st.total_payload_download),
        "wanted": int(st.total_wanted),
        "wantedDone": int(st.total_wanted_done),
        "upRate": int(st.upload_payload_rate),
        "downRate": int(st.download_payload_rate),
        "numPeers": int(st.num_peers),
        "peers": peer_list(h),
        "error": st.errc.message() if st.errc.value() else "",
    }


# ---- main loop plumbing ----------------------------------------------------------------------

class Driver:
    """Shared loop: stdin commands, periodic status, repeated dialling of --connect/--peer peers."""

    def __init__(self, a):
        self.a = a
        self.commands = queue.Queue()
        self.dial = []
        self.last_dial = 0.0
        self.last_status = time.monotonic()
        threading.Thread(target=self._read_stdin, daemon=True).start()

    def _read_stdin(self):
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                self.commands.put(json.loads(line))
            except ValueError:
                log("ignoring non-JSON command %r" % line)
        self.commands.put(None)

    def pending_commands(self):
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                return
            if cmd is None:
                raise Stop()
            yield cmd

    def status_due(self):
        now = time.monotonic()
        if self.a.status_interval > 0 and now - self.last_status >= self.a.status_interval:
            self.last_status = now
            return True
        return False

    def redial(self, h, force=False):
        now = time.monotonic()
        if self.dial and (force or now - self.last_dial >= CONNECT_EVERY_S):
            self.last_dial = now
            for ep in self.dial:
                try:
                    # Source "resume data", pex flags "encryption" only: the default flags claim
                    # the peer supports uTP, which would undo libtorrent's TCP fallback after a
                    # failed uTP attempt (aria2 has no uTP: every redial would try uTP again).
                    h.connect_peer(ep, PEER_SOURCE_RESUME_DATA, PEX_ENCRYPTION)
                except RuntimeError as e:
                    log("connect_peer %s:%d: %s" % (ep[0], ep[1], e))

    def handle_torrent_command(self, cmd, h):
        kind = cmd.get("cmd")
        if kind == "status":
            emit(dict(torrent_status(h), event="status", id=cmd.get("id")))
        elif kind == "connect":
            try:
                ep = loopback_hostport(str(cmd.get("peer", "")), "connect peer")
            except Failure as e:
                emit({"event": "error", "id": cmd.get("id"), "message": str(e)})
                return
            if ep not in self.dial:
                self.dial.append(ep)
            self.redial(h, force=True)
            emit({"event": "ack", "id": cmd.get("id")})
        else:
            emit({"event": "error", "id": cmd.get("id"), "message": "unknown command %r" % kind})


def wait_checked(ses, h, skip_check):
    """Until the initial hash check is over; True when the torrent then seeds."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        for al in ses.pop_alerts():
            if isinstance(al, (lt.torrent_error_alert, lt.file_error_alert)):
                raise Failure("libtorrent: %s" % al.message())
            if isinstance(al, lt.torrent_checked_alert):
                return h.status().is_seeding
        if skip_check and h.status().is_seeding:
            return True
        time.sleep(0.02)
    raise Failure("hash check took more than 10 minutes", EXIT_TIMEOUT)


def run_seed(a):
    ses, port = open_session(a)
    atp, infohash = add_params(a)
    t0 = time.monotonic()
    h = ses.add_torrent(atp)
    if not wait_checked(ses, h, a.skip_check):
        st = h.status()
        raise Failure("data in %s is incomplete (%.2f%% valid); not seeding" % (a.save_path, 100 * st.progress))
    d = Driver(a)
    d.dial = list(a.connect)
    emit({"event": "ready", "mode": "seed", "host": a.host, "port": port, "pid": os.getpid(),
          "infoHash": infohash, "checkSeconds": round(time.monotonic() - t0, 3)})
    d.redial(h, force=True)
    while True:
        for cmd in d.pending_commands():
            d.handle_torrent_command(cmd, h)
        ses.pop_alerts()
        d.redial(h)
        if d.status_due():
            emit(dict(torrent_status(h), event="status"))
        time.sleep(0.05)


def flush(ses, h):
    """Makes sure every downloaded block is in the files before they are read back."""
    h.flush_cache()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for al in ses.pop_alerts():
            if isinstance(al, lt.cache_flushed_alert):
                return
        time.sleep(0.02)
    raise Failure("libtorrent did not flush its cache within 30 s")


def file_chunks(path, size, pad):
    if size == 0:
        return
    if pad:
        yield bytes(size)
        return
    with open(path, "rb") as fh:
        while True:
            data = fh.read(1 << 20)
            if not data:
                return
            yield data


def verify_pieces(ti, save_path):
    fs = ti.files()
    missing, empty_missing, bad = [], [], []
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        p = os.path.join(save_path, fs.file_path(i))
        size = os.path.getsize(p) if os.path.isfile(p) else -1
        if fs.file_size(i) == 0 and size != 0:
            empty_missing.append(fs.file_path(i))
        elif fs.file_size(i) != 0 and size != fs.file_size(i):
            missing.append(fs.file_path(i))
    if missing:
        return {"ok": False, "missingFiles": missing, "badPieces": [], "emptyFilesMissing": empty_missing}
    plen = ti.piece_length()
    piece, buf = 0, bytearray()
    for i in range(fs.num_files()):
        pad = fs.file_flags(i) & lt.file_storage.flag_pad_file
        for data in file_chunks(os.path.join(save_path, fs.file_path(i)), fs.file_size(i), pad):
            buf += data
            while len(buf) >= plen:
                if hashlib.sha1(buf[:plen]).digest() != ti.hash_for_piece(piece):
                    bad.append(piece)
                piece += 1
                del buf[:plen]
    if buf:
        if hashlib.sha1(buf).digest() != ti.hash_for_piece(piece):
            bad.append(piece)
        piece += 1
    if piece != ti.num_pieces():
        bad.append(piece)
    return {"ok": not bad, "missingFiles": [], "badPieces": bad[:20], "emptyFilesMissing": empty_missing}


def run_leech(a):
    ses, port = open_session(a)
    atp, infohash = add_params(a)
    d = Driver(a)
    d.dial = list(a.peer) + [p for p in atp.peers if p not in a.peer]
    emit({"event": "ready", "mode": "leech", "host": a.host, "port": port, "pid": os.getpid(),
          "infoHash": infohash})
    t0 = time.monotonic()
    h = ses.add_torrent(atp)
    d.redial(h, force=True)
    seen, utp_seen, enc_seen = {}, False, False
    was_checking = True
    metadata_s = 0.0 if a.torrent else None
    while True:
        for cmd in d.pending_commands():
            d.handle_torrent_command(cmd, h)
        for al in ses.pop_alerts():
            if isinstance(al, (lt.torrent_error_alert, lt.file_error_alert, lt.metadata_failed_alert)):
                raise Failure("libtorrent: %s" % al.message())
            # A short transfer can start and end between two peer-list samples, so closed
            # connections count too: those that got as far as a peer id were established.
            if isinstance(al, lt.peer_disconnected_alert) and not al.pid.is_all_zeros():
                seen.setdefault("%s:%d" % (al.ip[0], al.ip[1]), "")
                utp_seen |= al.socket_type == lt.socket_type_t.utp
        st = h.status()
        if metadata_s is None and st.has_metadata:
            metadata_s = time.monotonic() - t0
        # libtorrent does not dial while it checks files: dial again the moment it can.
        checking = int(st.state) in (1, 7)
        if was_checking and not checking:
            d.redial(h, force=True)
        was_checking = checking
        for p in peer_list(h):
            seen[p["address"]] = p["client"] or seen.get(p["address"], "")
            utp_seen |= p["utp"]
            enc_seen |= p["encrypted"]
        if st.has_metadata and st.is_seeding:
            break
        if time.monotonic() - t0 > a.timeout:
            emit({"event": "done", "ok": False, "error": "timeout after %gs at %.2f%%" % (a.timeout, 100 * st.progress),
                  "seconds": round(time.monotonic() - t0, 3), "bytes": int(st.total_wanted_done),
                  "peersSeen": sorted(seen)})
            return EXIT_TIMEOUT
        d.redial(h)
        if d.status_due():
            emit(dict(torrent_status(h), event="status"))
        time.sleep(0.02)
    seconds = time.monotonic() - t0
    flush(ses, h)
    ti = h.torrent_file()
    verified = verify_pieces(ti, os.path.abspath(a.save_path))
    match = str(ti.info_hash()) == infohash
    ok = verified["ok"] and match
    total = ti.total_size()
    emit({"event": "done", "ok": ok, "seconds": round(seconds, 3), "bytes": total,
          "mbPerSec": round(total / seconds / 1e6, 2) if seconds > 0 else None,
          "metadataSeconds": None if metadata_s is None else round(metadata_s, 3),
          "infoHashMatch": match, "verify": verified, "peersSeen": sorted(seen),
          "peerClients": sorted(set(c for c in seen.values() if c)), "utpSeen": utp_seen,
          "encryptedSeen": enc_seen,
          "error": "" if ok else ("metadata has another infohash" if not match else "verification failed")})
    if not a.keep_seeding:
        return EXIT_OK if ok else EXIT_VERIFY_FAILED
    while True:
        for cmd in d.pending_commands():
            d.handle_torrent_command(cmd, h)
        ses.pop_alerts()
        d.redial(h)
        if d.status_due():
            emit(dict(torrent_status(h), event="status"))
        time.sleep(0.05)


def dht_stats(ses):
    ses.post_session_stats()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for al in ses.pop_alerts():
            if isinstance(al, lt.session_stats_alert):
                v = al.values
                return {"nodes": v["dht.dht_nodes"], "torrents": v["dht.dht_torrents"],
                        "peers": v["dht.dht_peers"], "announceIn": v["dht.dht_announce_peer_in"],
                        "getPeersIn": v["dht.dht_get_peers_in"]}
        time.sleep(0.02)
    return {}


def dht_lookup(ses, infohash, timeout):
    """get_peers through the DHT until at least one peer answers (libtorrent never puts its
    bootstrap 'routers' in the routing table, but it does query them)."""
    target = lt.sha1_hash(bytes.fromhex(infohash))
    found = set()
    deadline = time.monotonic() + timeout
    last = 0.0
    while not found and time.monotonic() < deadline:
        if time.monotonic() - last >= 2:
            ses.dht_get_peers(target)
            last = time.monotonic()
        for al in ses.pop_alerts():
            if isinstance(al, lt.dht_get_peers_reply_alert):
                found.update("%s:%d" % (ep[0], ep[1]) for ep in al.peers())
        time.sleep(0.05)
    return sorted(found)


def dht_put(ses, cmd):
    """BEP 44 put; waits for libtorrent's dht_put_alert and returns the reply fields."""
    try:
        v = bytes.fromhex(str(cmd.get("v", "")))
        public_key = bytes.fromhex(str(cmd.get("publicKey", "")))
        secret_key = bytes.fromhex(str(cmd.get("secretKey", "")))
        salt = bytes.fromhex(str(cmd.get("salt", "")))
    except ValueError:
        raise Failure("put: v, publicKey, secretKey and salt must be hex", EXIT_USAGE)
    timeout = float(cmd.get("timeout", 30))
    if public_key:
        if len(public_key) != 32 or len(secret_key) != 64:
            raise Failure("put: publicKey must be 32 bytes and secretKey 64", EXIT_USAGE)
        ses.dht_put_mutable_item(secret_key, public_key, v, salt)
        target = hashlib.sha1(public_key + salt).hexdigest()
        matches = lambda al: bytes(al.public_key) == public_key
    else:
        entry = lt.bdecode(v)
        if entry is None:
            raise Failure("put: v is not bencoded", EXIT_USAGE)
        target = str(ses.dht_put_immutable_item(entry))
        matches = lambda al: str(al.target) == target
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for al in ses.pop_alerts():
            if isinstance(al, lt.dht_put_alert) and matches(al):
                return {"target": target, "stored": int(al.num_success), "seq": int(al.seq)}
        time.sleep(0.05)
    raise Failure("put: no dht_put_alert within %gs" % timeout, EXIT_TIMEOUT)


def run_dht(a):
    a.dht_node = a.bootstrap
    ses, port = open_session(a, dht=True)
    d = Driver(a)
    emit({"event": "ready", "mode": "dht", "host": a.host, "port": port, "pid": os.getpid(),
          "bootstrap": ["%s:%d" % n for n in a.bootstrap]})
    while True:
        for cmd in d.pending_commands():
            kind = cmd.get("cmd")
            if kind == "status":
                emit(dict(dht_stats(ses), event="status", id=cmd.get("id")))
            elif kind == "lookup":
                ih = str(cmd.get("infohash", ""))
                if len(ih) != 40 or any(c not in "0123456789abcdef" for c in ih):
                    emit({"event": "error", "id": cmd.get("id"), "message": "infohash must be 40 lower-case hex"})
                    continue
                peers = dht_lookup(ses, ih, float(cmd.get("timeout", 30)))
                emit({"event": "lookup", "id": cmd.get("id"), "infohash": ih, "peers": peers})
            elif kind == "put":
                try:
                    emit(dict(dht_put(ses, cmd), event="put", id=cmd.get("id")))
                except Failure as e:
                    emit({"event": "error", "id": cmd.get("id"), "message": str(e)})
            else:
                emit({"event": "error", "id": cmd.get("id"), "message": "unknown command %r" % kind})
        if d.status_due():
            emit(dict(dht_stats(ses), event="status"))
        else:
            ses.pop_alerts()
        time.sleep(0.05)


def run_create(a):
    """A v1 .torrent made by libtorrent's create_torrent (for piece lengths mktorrent refuses).
    Files are added in the given order, and the creation date is left out, so the same input
    always gives the same bytes."""
    files = json.loads(a.files_json)
    fs = lt.file_storage()
    for rel, size in files:
        fs.add_file(rel, int(size))
    ct = lt.create_torrent(fs, a.piece_length, flags=lt.create_torrent.v1_only)
    for tier, url in enumerate(a.tracker):
        ct.add_tracker(url, tier)
    lt.set_piece_hashes(ct, os.path.abspath(a.data_dir))
    entry = ct.generate()
    entry.pop(b"creation date", None)
    with open(a.out, "wb") as fh:
        fh.write(lt.bencode(entry))
    emit({"event": "created", "path": a.out})
    return EXIT_OK


def parse_args(argv):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default="127.0.0.1")
    common.add_argument("--port", type=int, default=0)
    common.add_argument("--transport", choices=["both", "tcp", "utp"], default="both")
    common.add_argument("--encryption", choices=sorted(ENCRYPTION), default="prefer-plain")
    common.add_argument("--upload-limit", type=int, default=0)
    common.add_argument("--download-limit", type=int, default=0)
    common.add_argument("--tracker", action="append", default=[])
    common.add_argument("--pex", choices=["on", "off"], default="on")
    common.add_argument("--dht-node", action="append", default=[])
    common.add_argument("--status-interval", type=float, default=2.0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    seed = sub.add_parser("seed", parents=[common])
    seed.add_argument("--torrent", required=True)
    seed.add_argument("--save-path", required=True)
    seed.add_argument("--connect", action="append", default=[])
    seed.add_argument("--skip-check", action="store_true")
    seed.set_defaults(magnet=None)
    leech = sub.add_parser("leech", parents=[common])
    src = leech.add_mutually_exclusive_group(required=True)
    src.add_argument("--torrent")
    src.add_argument("--magnet")
    leech.add_argument("--save-path", required=True)
    leech.add_argument("--peer", action="append", default=[])
    leech.add_argument("--timeout", type=float, default=300)
    leech.add_argument("--keep-seeding", action="store_true")
    dht = sub.add_parser("dht", parents=[common])
    dht.add_argument("--bootstrap", action="append", default=[])
    create = sub.add_parser("create")
    create.add_argument("--data-dir", required=True)
    create.add_argument("--files-json", required=True)
    create.add_argument("--piece-length", type=int, required=True)
    create.add_argument("--out", required=True)
    create.add_argument("--tracker", action="append", default=[])
    a = ap.parse_args(argv)
    for t in a.tracker:
        loopback_url(t, "--tracker")
    if a.mode != "create":
        a.host = loopback_host(a.host, "--host")
        a.dht_node = [loopback_hostport(n, "--dht-node") for n in a.dht_node]
    if a.mode == "seed":
        a.connect = [loopback_hostport(p, "--connect") for p in a.connect]
    if a.mode == "leech":
        a.peer = [loopback_hostport(p, "--peer") for p in a.peer]
    if a.mode == "dht":
        a.bootstrap = [loopback_hostport(p, "--bootstrap") for p in a.bootstrap]
    return a


def main(argv):
    die_with_parent()

    def on_signal(signum, frame):
        raise Stop()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        a = parse_args(argv)
        run = {"seed": run_seed, "leech": run_leech, "dht": run_dht, "create": run_create}[a.mode]
        code = run(a)
    except Stop:
        code = EXIT_OK
    except Failure as e:
        emit({"event": "error", "message": str(e), "code": e.code})
        log(str(e))
        return e.code
    except RuntimeError as e:
        emit({"event": "error", "message": "libtorrent: %s" % e, "code": EXIT_CLIENT})
        log(str(e))
        return EXIT_CLIENT
    emit({"event": "stopped"})
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
