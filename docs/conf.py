"""Sphinx configuration for sklearn_music."""

import os
from datetime import date

import sklearn_music

project = "sklearn_music"
author = "sklearn_music developers"
copyright = f"{date.today().year}, {author}"
version = release = sklearn_music.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

# autosummary looks a :template: name up in templates_path itself
templates_path = ["_templates", "_templates/autosummary"]
exclude_patterns = ["_build", "benchmarks/*.rst", "**/README.rst"]
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# Cross-references to the libraries we build on. The inventories come from the web,
# which CI and the build machines cannot reach, so they are opt-in:
# SKLEARN_MUSIC_INTERSPHINX=1 make docs.
intersphinx_mapping = {}
if os.environ.get("SKLEARN_MUSIC_INTERSPHINX"):
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "sklearn": ("https://scikit-learn.org/stable/", None),
        "librosa": ("https://librosa.org/doc/latest/", None),
        "skorch": ("https://skorch.readthedocs.io/en/stable/", None),
        "torch": ("https://pytorch.org/docs/stable/", None),
    }

# A reference into this package that resolves to no page is a warning, so an error
# under -W: `make docs` fails on it instead of rendering it as plain code. Targets
# outside the package (numpy, scikit-learn, ...: their inventories are opt-in above)
# are let go.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!sklearn_music(\.|$)).*")]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "abort_on_example_error": True,
    "doc_module": ("sklearn_music",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"sklearn_music": None},
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "pydata_sphinx_theme"
html_title = "sklearn_music"
html_static_path = []
html_theme_options = {"navigation_with_keys": False}
# The left sidebar shows the whole site on every page (see the template's comment).
html_sidebars = {"**": ["sidebar-site-nav.html"]}


def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    # scikit-learn generates set_{fit,score,...}_request on estimators whose methods
    # take metadata; their docstrings point into scikit-learn's own glossary and user
    # guide, which are not part of this site. scikit-learn's docs describe them.
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
