"""The Python receiver webhook-bridge is measured against: what a team writes by hand.

FastAPI on uvicorn (uvloop, httptools), the `standardwebhooks` package to verify, and
`confluent-kafka` to produce with the bridge's Kafka defaults (acks=all, idempotence on,
linger.ms=1, max.in.flight=1). It answers 200 only after the delivery report, deduplicates
on webhook-id in memory, and answers 401 on a bad signature and 503 when Kafka fails: the
same contract as the bridge, written the usual way.

Environment: BENCH_SECRET (whsec_...), KAFKA_BOOTSTRAP_SERVERS, BENCH_TOPIC.
"""

import asyncio
import os
import threading
from contextlib import asynccontextmanager

from confluent_kafka import Producer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

webhook = Webhook(os.environ["BENCH_SECRET"])
topic = os.environ.get("BENCH_TOPIC", "webhooks")
producer = Producer(
    {
        "bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 1,
        "max.in.flight": 1,
    }
)
seen: set[str] = set()


def poll_forever() -> None:
    while True:
        producer.poll(0.1)


@asynccontextmanager
async def lifespan(app: FastAPI):
    threading.Thread(target=poll_forever, daemon=True).start()
    yield
    producer.flush(5)


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@app.post("/webhooks/bench")
async def receive(request: Request) -> JSONResponse:
    body = await request.body()
    try:
        payload = webhook.verify(body, dict(request.headers))
    except WebhookVerificationError:
        return JSONResponse({"error": "signature_invalid"}, status_code=401)
    event_id = request.headers["webhook-id"]
    if event_id in seen:
        return JSONResponse({"id": event_id, "status": "duplicate"})
    loop = asyncio.get_running_loop()
    delivered = loop.create_future()

    def on_delivery(error, message) -> None:
        loop.call_soon_threadsafe(delivered.set_result, error)

    producer.produce(topic, value=body, key=event_id, on_delivery=on_delivery)
    error = await delivered
    if error is not None:
        return JSONResponse({"error": "sink_unavailable"}, status_code=503)
    seen.add(event_id)
    return JSONResponse({"id": event_id, "status": "accepted", "type": payload.get("type")})
