"""The server's Prometheus metrics, in a registry of its own (one per application, so that two in one process
do not share counts). With ``--workers N`` each worker process counts its own requests: a scrape reaches one."""
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_batch):
        self.registry = CollectorRegistry()
        self.requests = Counter("paddle_resnet_requests", "HTTP requests answered, by route and status",
                                ["route", "status"], registry=self.registry)
        self.errors = Counter("paddle_resnet_errors", "requests answered with an error, by kind", ["kind"],
                              registry=self.registry)
        self.images = Counter("paddle_resnet_images", "images predicted (readable or not)", registry=self.registry)
        self.latency = Histogram("paddle_resnet_predict_latency_seconds", "time to answer POST /predict",
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("paddle_resnet_batch_size", "images per model call",
                                    buckets=sorted({1, 2, 4, 8, 16, 32, 64, max_batch}), registry=self.registry)
        self.queue_depth = Gauge("paddle_resnet_queue_depth", "images accepted and not yet answered (decoding, "
                                 "waiting for the model, or in it)", registry=self.registry)

    def render(self):
        return generate_latest(self.registry)
