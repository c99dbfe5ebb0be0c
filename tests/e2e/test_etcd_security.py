"""A server on an etcd that asks for TLS with client certificates, and on one with user and
password authentication: the options docs/production.md gives, checked against a real etcd."""

import base64
import json
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import Berth, free_port
from etcd_helpers import KEYS


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `d`."""
    d.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=berth-test-ca",
            "-keyout", "ca.key", "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for name, usage, san in [("server", "serverAuth", "subjectAltName=IP:127.0.0.1"),
                             ("client", "clientAuth", "subjectAltName=DNS:berth")]:
        (d / f"{name}.ext").write_text(f"{san}\nextendedKeyUsage={usage}\nkeyUsage=critical,digitalSignature,keyEncipherment\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)
    return d


class SingleEtcd:
    """One etcd member on loopback with extra flags."""

    def __init__(self, base, scheme, *flags):
        self.client = free_port()
        self.url = f"{scheme}://127.0.0.1:{self.client}"
        peer = f"http://127.0.0.1:{free_port()}"
        self.log = open(base / "etcd.log", "w")
        self.proc = subprocess.Popen([shutil.which("etcd"), "--name=single", f"--data-dir={base / 'data'}",
                                      f"--listen-client-urls={self.url}", f"--advertise-client-urls={self.url}",
                                      f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                                      f"--initial-cluster=single={peer}", "--logger=zap", "--log-level=warn",
                                      "--max-txn-ops=10000", "--max-request-bytes=16777216", *flags],
                                     stdout=self.log, stderr=self.log)
        import socket
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.client), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline, "etcd did not listen"
                time.sleep(0.1)

    def stop(self):
        self.proc.kill()
        self.proc.wait(timeout=10)


def server(tmp_path, name, etcd, *flags):
    return Berth(tmp_path / name, ("--runtime", "none", *KEYS, "--store", f"etcd://127.0.0.1:{etcd.client}", *flags))


def test_tls_with_client_certificates(tmp_path):
    pki = make_pki(tmp_path / "pki")
    etcd = SingleEtcd(tmp_path, "https", f"--cert-file={pki / 'server.pem'}", f"--key-file={pki / 'server.key'}",
                      f"--trusted-ca-file={pki / 'ca.pem'}", "--client-cert-auth")
    try:
        tls = ("--etcd-ca", str(pki / "ca.pem"), "--etcd-cert", str(pki / "client.pem"), "--etcd-key", str(pki / "client.key"))
        b = server(tmp_path, "a", etcd, *tls).start()
        try:
            assert f"state     etcd https://127.0.0.1:{etcd.client}" in b.output
            b.client().create_cluster(clusterName="over-tls")
            assert "arn:aws:ecs:us-east-1:000000000000:cluster/over-tls" in b.client().list_clusters()["clusterArns"]
        finally:
            b.stop()
        # Without a client certificate, or without TLS at all, etcd refuses: the server stops.
        for flags in [("--etcd-ca", str(pki / "ca.pem")), ()]:
            with pytest.raises(RuntimeError) as failed:
                server(tmp_path, "b", etcd, *flags).start()
            assert "connecting to etcd" in str(failed.value), str(failed.value)
    finally:
        etcd.stop()


def gateway(etcd, path, body, token=None):
    """A call to etcd's JSON gateway (etcd 3.4's /v3/...), as etcdctl would make it."""
    req = urllib.request.Request(etcd.url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": token} if token else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def test_user_and_password(tmp_path):
    etcd = SingleEtcd(tmp_path, "http")
    try:
        gateway(etcd, "/v3/auth/user/add", {"name": "root", "password": "rootpw"})
        gateway(etcd, "/v3/auth/user/grant", {"user": "root", "role": "root"})
        gateway(etcd, "/v3/auth/user/add", {"name": "berth", "password": "berthpw"})
        gateway(etcd, "/v3/auth/role/add", {"name": "berth"})
        ns = "secure/"
        key = base64.b64encode(ns.encode()).decode()
        end = base64.b64encode(b"secure0").decode()
        gateway(etcd, "/v3/auth/role/grant", {"name": "berth", "perm": {"permType": "READWRITE", "key": key, "range_end": end}})
        gateway(etcd, "/v3/auth/user/grant", {"user": "berth", "role": "berth"})
        gateway(etcd, "/v3/auth/enable", {})

        b = server(tmp_path, "a", etcd, "--etcd-namespace", ns, "--etcd-user", "berth", "--etcd-password", "berthpw").start()
        try:
            b.client().create_cluster(clusterName="with-auth")
            assert "arn:aws:ecs:us-east-1:000000000000:cluster/with-auth" in b.client().list_clusters()["clusterArns"]
        finally:
            b.stop()
        # The state is where the role allows, under the namespace (read back as root).
        token = gateway(etcd, "/v3/auth/authenticate", {"name": "root", "password": "rootpw"})["token"]
        found = gateway(etcd, "/v3/kv/range", {"key": key, "range_end": end, "count_only": True}, token)
        assert int(found["count"]) > 0
        with pytest.raises(RuntimeError) as failed:
            server(tmp_path, "b", etcd, "--etcd-namespace", ns, "--etcd-user", "berth", "--etcd-password", "wrong").start()
        assert "connecting to etcd" in str(failed.value), str(failed.value)
    finally:
        etcd.stop()
