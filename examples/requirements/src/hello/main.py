"""The task code baked into the image: proves the dependencies and the source are there."""

import idna
import six


def main() -> None:
    print(f"hello from imagespec: six {six.__version__}, idna {idna.__version__}")
    print(idna.encode("bücher.example").decode())


if __name__ == "__main__":
    main()
