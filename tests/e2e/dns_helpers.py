"""What the tests of Berth's DNS server share: a Cloud Map client as SDK users must configure it,
a fake upstream resolver on loopback (so forwarding is tested without sending a query off the
machine), and DNS queries with dnspython."""

import socket
import threading

import boto3
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
from botocore.config import Config

from conftest import REGION


def cloudmap(b):
    """A boto3 Cloud Map client of `b`. DiscoverInstances carries the host prefix `data-` in the
    model: an SDK would call `data-127.0.0.1`, so the prefix is turned off, as
    docs/service-discovery.md tells users to."""
    return boto3.client(
        "servicediscovery", endpoint_url=b.endpoint, region_name=REGION, aws_access_key_id=b.access_key,
        aws_secret_access_key=b.secret_key,
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1, "mode": "standard"}))


class FakeUpstream:
    """A resolver on 127.0.0.1 (UDP) that knows `names` (name → IPv4 address) and answers
    NXDOMAIN for everything else; it counts the queries it got."""

    def __init__(self, names):
        self.names = {n.rstrip(".").lower() + ".": ip for n, ip in names.items()}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            question = query.question[0]
            name = question.name.to_text().lower()
            self.queries.append(name)
            answer = dns.message.make_response(query)
            answer.flags |= dns.flags.RA
            if name in self.names and question.rdtype == dns.rdatatype.A:
                answer.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", self.names[name]))
            elif name not in self.names:
                answer.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(answer.to_wire(), peer)

    def stop(self):
        self.sock.close()


def ask(server, name, rdtype="A", tcp=False):
    """One query to `server` ((host, port)); returns the answer message."""
    query = dns.message.make_query(name, rdtype, use_edns=0)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, server[0], port=server[1], timeout=5)


def addresses(answer, rdtype="A"):
    """The addresses (or other texts) of the answer's records of `rdtype`."""
    kind = dns.rdatatype.from_text(rdtype)
    return sorted(r.to_text() for rrset in answer.answer if rrset.rdtype == kind for r in rrset)
