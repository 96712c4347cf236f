"""The provider rate limit is one clock in Redis shared by every sender."""

import threading
import uuid

from newsletter.ratelimit_send import send_slot_wait


def test_bookings_from_many_senders_queue_up_on_one_clock(settings):
    settings.NEWSLETTER_SEND_RATE = 100.0
    provider = f"test-{uuid.uuid4().hex}"
    waits: list[float] = []
    lock = threading.Lock()

    def book():
        wait = send_slot_wait(provider=provider, messages=50)
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=book) for _i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    waits.sort()
    # 8 × 50 messages at 100/s: the bookings start half a second apart, whoever asked.
    gaps = [b - a for a, b in zip(waits, waits[1:], strict=False)]
    assert all(0.4 < gap < 0.6 for gap in gaps), waits
    assert 3.3 < waits[-1] < 3.6


def test_no_limit_means_no_wait(settings):
    settings.NEWSLETTER_SEND_RATE = 0
    assert send_slot_wait(provider="any", messages=1000) == 0.0
