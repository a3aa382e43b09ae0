"""The optional native parser of the reading stage (instrumetriq_polars/read/_spans.c).

Everything else is declared in pyproject.toml. Without a C compiler (or Python's headers) the
extension is left out and the package installs all the same: the export then reads every line
with the object lane (same output, slower) and says so in one warning line.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Build the extension if this machine can; otherwise warn and go on."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - no compiler at all, and the like
            self.warn(f"the native spot_prices parser was not built ({exc}); the object lane will be used")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - a failed compile
            self.warn(f"the native spot_prices parser was not built ({exc}); the object lane will be used")


setup(
    ext_modules=[Extension("instrumetriq_polars.read._spans", ["instrumetriq_polars/read/_spans.c"],
                           extra_compile_args=["-O2"], optional=True)],
    cmdclass={"build_ext": OptionalBuildExt},
)
