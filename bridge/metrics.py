"""The bridge's Prometheus metrics, in a registry of its own (no global state)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.relayed_in = Counter("liaison_mss_relayed_in", "Courriels relayés vers un salon", registry=r)
        self.relayed_out = Counter("liaison_mss_relayed_out", "Messages relayés par courriel", registry=r)
        self.quarantined = Counter("liaison_mss_quarantined", "Courriels mis en quarantaine", ["reason"], registry=r)
        self.rejected = Counter("liaison_mss_rejected", "Courriels refusés", ["reason"], registry=r)
        self.duplicates = Counter("liaison_mss_duplicates", "Courriels déjà traités (doublons)", registry=r)
        self.retries = Counter("liaison_mss_retries", "Nouveaux essais d'envoi", registry=r)
        self.receipts = Counter("liaison_mss_receipts", "Accusés reçus", ["kind", "status"], registry=r)
        self.events_received = Counter("liaison_mss_events_received", "Messages de salon reçus du serveur (nouveaux)",
                                       registry=r)
        self.txn_reused = Counter("liaison_mss_transactions_reused", "Transactions dont l'identifiant était déjà "
                                  "connu mais qui portaient des événements nouveaux", registry=r)
        self.events_caught_up = Counter("liaison_mss_events_caught_up", "Messages de salon que le serveur n'avait pas "
                                        "poussés, relus dans les salons (redémarrage du serveur)", registry=r)
        self.not_relayed = Counter("liaison_mss_events_not_relayed", "Réponses reçues qui n'ont pas pu être relayées",
                                   ["reason"], registry=r)
        self.outbox_depth = Gauge("liaison_mss_outbox_depth", "Courriels en attente d'envoi", registry=r)
        self.inbound_latency = Histogram("liaison_mss_inbound_seconds", "Relève IMAP → message posté",
                                         buckets=BUCKETS, registry=r)
        self.outbound_latency = Histogram("liaison_mss_outbound_seconds", "Message reçu → courriel accepté",
                                          buckets=BUCKETS, registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
