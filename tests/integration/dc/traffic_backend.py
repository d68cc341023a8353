#!/usr/bin/python3
"""A container's workload for the traffic tests: says who it is.

  traffic_backend.py --id ID [--http PORT] [--tcp PORT] [--udp PORT]

HTTP (threaded): GET answers "ID HOST X-FORWARDED-PROTO X-FORWARDED-FOR\n" (the request's
headers, "-" when absent); POST/PUT read the whole body (however slowly it comes) and answer
"ID <bytes received>\n"; a GET with "Upgrade: websocket" gets 101 and then every read is echoed
back as "ID <bytes>". TCP: every connection gets "ID\n" and is closed. UDP: every datagram is
answered with "ID". Prints "ready" once every socket listens. Standard library only.
"""

import argparse
import http.server
import socket
import socketserver
import sys
import threading


def make_handler(ident):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, text):
            data = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def websocket(self):
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            while data := self.rfile.read1(4096):
                self.wfile.write(ident.encode() + b" " + data)

        def do_GET(self):  # noqa: N802
            if self.headers.get("Upgrade", "").lower() == "websocket":
                return self.websocket()
            host = self.headers.get("Host", "-")
            proto = self.headers.get("X-Forwarded-Proto", "-")
            forwarded = self.headers.get("X-Forwarded-For", "-")
            self._reply(f"{ident} {host} {proto} {forwarded}\n")

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            got = 0
            while got < length:
                chunk = self.rfile.read(min(65536, length - got))
                if not chunk:
                    break
                got += len(chunk)
            self._reply(f"{ident} {got}\n")

        do_PUT = do_POST

        def log_message(self, *args):
            pass

    return Handler


class TcpIdentity(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--id", required=True)
    p.add_argument("--http", type=int)
    p.add_argument("--tcp", type=int)
    p.add_argument("--udp", type=int)
    a = p.parse_args()
    servers = []
    if a.http:
        http.server.ThreadingHTTPServer.allow_reuse_address = True
        servers.append(http.server.ThreadingHTTPServer(("0.0.0.0", a.http), make_handler(a.id)))
    if a.tcp:
        ident = a.id

        class Identity(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.sendall(f"{ident}\n".encode())
                self.request.shutdown(socket.SHUT_WR)

        servers.append(TcpIdentity(("0.0.0.0", a.tcp), Identity))
    if a.udp:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("0.0.0.0", a.udp))

        def answer():
            while True:
                _, peer = udp.recvfrom(2048)
                udp.sendto(a.id.encode(), peer)

        threading.Thread(target=answer, daemon=True).start()
    for s in servers:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
