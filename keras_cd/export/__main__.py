"""Command line: export a `.keras` model to ONNX and/or SavedModel with parity figures.

Loads the model, exports it with `keras_cd.export.to_onnx` and/or
`keras_cd.export.to_saved_model` (each export is run and compared with the
Keras model before it is written) and prints, for each file, the largest
difference from Keras and the batch sizes checked. `--monte-carlo` exports
one Monte-Carlo pass with the diffusion noise as an input (see
`keras_cd.export`). Exit status 0 on success, 1 when an export was refused.

```bash
python -m keras_cd.export runs/cifar/model.keras --onnx model.onnx --saved-model serving/cd_resnet
keras-cd-export model.keras --onnx model_mc.onnx --monte-carlo
```
"""

import argparse
import os
import sys


def parse_args(argv=None):
    """Parses the command line.

    Args:
        argv: list of str, the arguments without the program name. Defaults
            to `None`: `sys.argv[1:]`.

    Returns:
        An `argparse.Namespace` with `model`, `onnx`, `saved_model`,
        `version`, `opset`, `monte_carlo`, `atol` and `overwrite`.

    Raises:
        SystemExit: (from argparse, with a usage message) if nothing is to be
            exported or MODEL is not an existing `.keras` file.
    """
    parser = argparse.ArgumentParser(
        prog="python -m keras_cd.export",
        description="Export a .keras model to ONNX and/or a TF-Serving SavedModel; each export "
        "is run and compared with the Keras model before it is written.",
    )
    parser.add_argument("model", help="path of a .keras file")
    parser.add_argument("--onnx", metavar="OUT.onnx", help="write an ONNX file")
    parser.add_argument(
        "--saved-model",
        metavar="OUT_DIR",
        help="write OUT_DIR/<version>/ (TensorFlow Serving layout)",
    )
    parser.add_argument(
        "--version", type=int, default=None, help="SavedModel version (default: next)"
    )
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: 17)")
    parser.add_argument(
        "--monte-carlo",
        action="store_true",
        help="export one Monte-Carlo pass with an explicit `noise` input",
    )
    parser.add_argument("--atol", type=float, default=1e-5, help="parity tolerance")
    parser.add_argument("--overwrite", action="store_true", help="replace existing exports")
    args = parser.parse_args(argv)
    if not (args.onnx or args.saved_model):
        parser.error("nothing to do: give --onnx OUT.onnx and/or --saved-model OUT_DIR")
    if not os.path.isfile(args.model) or not args.model.endswith(".keras"):
        parser.error(f"MODEL must be an existing .keras file, got {args.model!r}")
    return args


def main(argv=None):
    """Runs the command line; returns the exit status.

    Args:
        argv: list of str, the arguments without the program name. Defaults
            to `None`: `sys.argv[1:]`.

    Returns:
        int, 0 when every export succeeded, 1 when one was refused (an
        existing file without `--overwrite`, a failed parity check, a missing
        optional dependency); the error goes to stderr.
    """
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    import keras_cd  # noqa: F401  (registers the layers for loading)
    from keras_cd import export

    model = keras.saving.load_model(args.model, compile=False)
    reports = []
    try:
        if args.onnx:
            reports.append(
                export.to_onnx(
                    model,
                    args.onnx,
                    opset=args.opset,
                    atol=args.atol,
                    overwrite=args.overwrite,
                    monte_carlo=args.monte_carlo,
                )
            )
        if args.saved_model:
            reports.append(
                export.to_saved_model(
                    model,
                    args.saved_model,
                    version=args.version,
                    atol=args.atol,
                    overwrite=args.overwrite,
                    monte_carlo=args.monte_carlo,
                )
            )
    except (FileExistsError, ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for report in reports:
        print(
            f"{report.format:<12} {report.path}  max |export - keras| = {report.max_abs_diff:.3g} "
            f"(batch sizes {', '.join(map(str, report.batch_sizes))}; atol {args.atol:g})"
            + ("; Monte-Carlo pass with a noise input" if report.monte_carlo else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
