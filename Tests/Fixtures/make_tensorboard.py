#!/usr/bin/env python3
"""Golden TensorBoard event file for the export test, written by the `tensorboard` package itself.

The events (wall times, steps, tags, values) are in golden.json; golden.tfevents is those events serialized by
tensorboard's protobuf classes and framed by its RecordWriter (TFRecord: length, masked CRC32C of the length, data,
masked CRC32C of the data). The Swift test builds the same events with TensorBoardEvents and compares the bytes.

    pip install tensorboard   # 2.21.0 here
    python3 Tests/Fixtures/make_tensorboard.py
"""
import io
import json
import pathlib

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

HERE = pathlib.Path(__file__).parent / "tensorboard"

EVENTS = {
    "file_version": {"wall_time": 1764633600.25},
    "scalars": [
        {"wall_time": 1764633601.5, "step": 500,
         "values": [["extrapolation/ppl_1x", 5.222], ["extrapolation/ppl_2x", 7.0625], ["extrapolation/ratio_2x", 1.3525]]},
        {"wall_time": 1764637200.0, "step": 1000,
         "values": [["extrapolation/ppl_1x", 4.291], ["extrapolation/yarn/ppl_16x", 41.12], ["extrapolation/ratio_16x", 9.58]]},
        {"wall_time": 1764640800.125, "step": 0, "values": [["extrapolation/ppl_1x", 0.0]]},
    ],
}


def main():
    HERE.mkdir(exist_ok=True)
    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    version = event_pb2.Event(wall_time=EVENTS["file_version"]["wall_time"], file_version="brain.Event:2")
    writer.write(version.SerializeToString())
    for scalar in EVENTS["scalars"]:
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=value) for tag, value in scalar["values"]])
        event = event_pb2.Event(wall_time=scalar["wall_time"], step=scalar["step"], summary=summary)
        writer.write(event.SerializeToString())
    (HERE / "golden.tfevents").write_bytes(buffer.getvalue())
    (HERE / "golden.json").write_text(json.dumps(EVENTS, indent=2) + "\n")
    print(f"wrote {HERE / 'golden.tfevents'} ({len(buffer.getvalue())} bytes)")


if __name__ == "__main__":
    main()
