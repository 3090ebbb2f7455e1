"""`python -m keras_cd.serving MODEL [flags]`: the model server (see `keras_cd.serving.cli`)."""

from keras_cd.serving.cli import main

if __name__ == "__main__":
    main()
