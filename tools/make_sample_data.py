"""Write a small dataset in an official layout from the synthetic generator.

python tools/make_sample_data.py --format cityscapes --out data/cityscapes_sample
"""

import argparse

from segmnv3.data.samples import FORMATS, write_sample_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument("--out", required=True, help="folder to write the tree into")
    parser.add_argument("--train", type=int, default=8, help="number of train images")
    parser.add_argument("--val", type=int, default=4, help="number of val images")
    parser.add_argument("--test", type=int, default=0, help="test images (cityscapes only)")
    parser.add_argument("--size", type=int, nargs=2, default=(128, 256), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = write_sample_data(
        args.format, args.out, args.train, args.val, tuple(args.size), args.seed, args.test
    )
    print(f"wrote a {args.format} sample tree to {out}")


if __name__ == "__main__":
    main()
