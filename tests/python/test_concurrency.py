"""One loaded model shared by 8 Python threads doing forwards on different inputs gives
bit-identical results to sequential runs (ctypes releases the GIL during the calls); the
thread-count setting may change between calls."""
import threading
from pathlib import Path

import numpy as np

import vidattn

MODELS = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def test_shared_model_many_threads():
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((1, 4, 3, 32, 32)).astype(np.float32) for _ in range(8)]
    with vidattn.load(MODELS / "timesformer_divided") as m:
        sequential = [m(x) for x in inputs]
        results = [None] * 8
        errors = []

        def work(i):
            try:
                for _ in range(5):
                    results[i] = m(inputs[i])
            except Exception as e:        # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        for got, want in zip(results, sequential):
            np.testing.assert_array_equal(got, want)


def test_thread_count_changes_between_calls():
    x = np.random.default_rng(1).standard_normal((2, 4, 3, 32, 32)).astype(np.float32)
    n = vidattn.get_num_threads()
    with vidattn.load(MODELS / "vivit") as m:
        outs = []
        for t in (1, 2, 3, 1):
            vidattn.set_num_threads(t)
            outs.append(m(x))
    vidattn.set_num_threads(n)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_close_while_other_threads_run_forwards():
    """close() from one thread while 4 others run forwards: nothing crashes, the forwards
    that had started finish with correct results, and later calls raise ValueError.
    Deterministic: every worker finishes one forward before close() (a barrier), then keeps
    calling until a call raises, which must happen once close() has run."""
    x = np.random.default_rng(2).standard_normal((1, 4, 3, 32, 32)).astype(np.float32)
    m = vidattn.load(MODELS / "vivit")
    want = m(x)
    started, one_done = threading.Barrier(5), threading.Barrier(5)
    outcomes = {i: [] for i in range(4)}

    def work(i):
        started.wait()
        outcomes[i].append(("ok", bool(np.array_equal(m(x), want))))
        one_done.wait()
        for _ in range(100_000):
            try:
                got = m(x)
            except ValueError as e:
                outcomes[i].append(("closed", str(e)))
                return
            outcomes[i].append(("ok", bool(np.array_equal(got, want))))
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    started.wait()
    one_done.wait()
    m.close()
    for t in threads:
        t.join()
    for i, out in outcomes.items():
        assert out[0] == ("ok", True), f"worker {i}: the forward before close() failed"
        assert all(ok for kind, ok in out if kind == "ok"), f"worker {i}: a forward racing close() was wrong"
        assert out[-1][0] == "closed" and "closed" in out[-1][1], f"worker {i} never saw the model closed"
