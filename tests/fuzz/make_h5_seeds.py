#!/usr/bin/env python3
"""Writes tests/fuzz/corpus/h5/: inputs for fuzz_h5, which reads its input with
libFuzzer's FuzzedDataProvider (decisions from the end, value bytes from the
front). Each seed describes the files the unit tests write
(tests/layout_fixtures.h: value_of, write_ply_data_h5), plus NaN, string
labels and a dataset never written. Usage: python3 tests/fuzz/make_h5_seeds.py"""
import os
import struct

TYPES = {'f32': 0, 'f64': 1, 'u8': 2, 'i8': 3, 'i16': 4, 'u32': 5, 'i32': 6, 'i64': 7, 'u64': 8, 'f16': 9,
         'str': 10, 'compound': 11}


class Encoder:
    """The inverse of FuzzedDataProvider for the calls fuzz_h5.cpp makes."""

    def __init__(self):
        self.front, self.back = b'', []

    def integral(self, lo, hi, v):  # ConsumeIntegralInRange: big-endian bytes, as many as the range needs
        n = 0
        while n < 8 and ((hi - lo) >> (8 * n)) > 0:
            n += 1
        self.back += list((v - lo).to_bytes(n, 'big'))

    def boolean(self, b):
        self.back.append(1 if b else 0)

    def data(self):
        return self.front + bytes(reversed(self.back))


def value_of(tag, p, c):
    return tag + 0.25 * p - 0.5 * c


def dataset(e, pointnet_dims=None, dims=None, typ='f32', big=False, storage=0, chunk=None, values=b''):
    """write_dataset(): `pointnet_dims` = (n, points, kind) with kind 0 (n, points, 3), 1 (n, 1), 2 (n), 3 (n, points)."""
    e.boolean(True)
    if pointnet_dims:
        e.boolean(True)
        n, points, kind = pointnet_dims
        e.integral(0, 3, n), e.integral(0, 8, points), e.integral(0, 3, kind)
        dims = {0: [n, points, 3], 1: [n, 1], 2: [n], 3: [n, points]}[kind]
    else:
        e.boolean(False)
        e.integral(0, 4, len(dims))
        for d in dims:
            e.integral(0, 40, d)
    e.boolean(big)
    e.integral(0, 11, TYPES[typ])
    if typ == 'str':
        e.integral(1, 8, 4)
    e.integral(0, 4, storage)
    count = 1
    for d in dims:
        count *= d
    if storage in (1, 2) and dims and count > 0:
        for d, c in zip(dims, chunk):
            e.integral(1, d, c)
    if storage != 4 and count > 0:
        e.front += values


def absent(e):
    e.boolean(False)


def f32(values, big=False):
    return b''.join(struct.pack('>f' if big else '<f', v) for v in values)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'h5')
    os.makedirs(out, exist_ok=True)
    seeds = {}
    e = Encoder()  # write_modelnet_hdf5's train0 with normals: data, label (n, 1) u8, normal (chunked, gzip)
    dataset(e, (2, 4, 0), values=f32([value_of(t, p, c) for t in (1, 2) for p in range(4) for c in range(3)]))
    dataset(e, (2, 0, 1), typ='u8', values=bytes([2, 0]))
    dataset(e, (2, 4, 0), storage=2, chunk=[1, 4, 3],
            values=f32([value_of(t, p, c + 3) for t in (1, 2) for p in range(4) for c in range(3)]))
    absent(e)
    seeds['modelnet_normals'] = e.data()
    e = Encoder()  # write_shapenet_part_hdf5's: data (f64 big-endian here), label (n) i32, pid (n, points) u8
    dataset(e, (1, 4, 0), typ='f64', big=True,
            values=b''.join(struct.pack('>d', value_of(5, p, c)) for p in range(4) for c in range(3)))
    dataset(e, (1, 0, 2), typ='i32', values=struct.pack('<i', 1))
    absent(e)
    dataset(e, (1, 4, 3), typ='u8', storage=1, chunk=[1, 2], values=bytes([12, 13, 14, 15]))
    seeds['shapenet_pid'] = e.data()
    e = Encoder()  # a NaN coordinate (compact storage), labels as strings
    dataset(e, (1, 2, 0), storage=3, values=f32([1, 2, 3, float('nan'), 0, 0]))
    dataset(e, (1, 0, 1), typ='str', values=b'abcd')
    absent(e), absent(e)
    seeds['nan_and_string_labels'] = e.data()
    e = Encoder()  # a (40, 40, 3) shape never written: nothing stored behind it
    dataset(e, dims=[40, 40, 3], storage=4)
    dataset(e, (1, 0, 1), typ='u8', values=bytes([0]))
    absent(e), absent(e)
    seeds['unwritten_data'] = e.data()
    for name, data in seeds.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
