"""Catalogue-scale jobs on a Dask cluster: embed, index and recommend.

Three jobs, each run on the workers of a :class:`dask.distributed.Client` (a
local cluster by default, any scheduler address otherwise):

- :func:`embed_catalogue`: audio files -> Parquet shards of ``(track_id,
  vector)``, resumable and fault-tolerant;
- :func:`build_store_from_vectors`: shards -> approximate index -> every
  track's top-k on the workers -> :class:`~sklearn_music.store.SimilarityStore`,
  streamed;
- :func:`recommend_all`: a listening table -> every user's top-n unheard
  tracks as Parquet (``user_id, rank, track_id, score``), optionally in the store.

See the user guide's "Scaling out" page.
"""

from ._cli import add_batch_parsers
from ._embed import embed_catalogue
from ._neighbours import build_store_from_vectors
from ._recommend import recommend_all
from ._shards import read_listing, read_vectors

__all__ = [
    "add_batch_parsers",
    "build_store_from_vectors",
    "embed_catalogue",
    "read_listing",
    "read_vectors",
    "recommend_all",
]
