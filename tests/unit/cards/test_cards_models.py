def _draw_into(queue) -> None:
    from cards.text import new_uuid

    queue.put(new_uuid())


def test_card_uuids_differ_between_forked_processes():
    """gunicorn may fork after import: each child must draw its own uuids, not the parent's sequence."""
    import multiprocessing

    from cards.text import new_uuid

    new_uuid()  # the generator exists before the fork, as it would in a preloaded app
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    children = [ctx.Process(target=_draw_into, args=(queue,)) for _ in range(2)]
    for child in children:
        child.start()
    drawn = [queue.get(timeout=10) for _ in children]
    for child in children:
        child.join(10)
    assert len(set(drawn)) == 2 and new_uuid() not in drawn
