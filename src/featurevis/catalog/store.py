"""A catalog's storage: one SQLite database beside the image files, in the catalog folder.

Why this shape: a build may be killed at any instant (Ctrl-C, ``kill -9``, a full disk). Image
files are written first, each atomically (temporary file + rename), and only then is the
shard's database row set committed in one transaction; a row therefore never points at a
missing or half-written file, and a file without a row is simply written again on resume.
Only a process killed outright leaves a write's temporary file behind; the next writer sweeps
them (:meth:`CatalogStore.sweep`). One writer at a time holds the folder's lock
(``catalog.lock``), so a sweep never takes a file another build is still writing. WAL mode lets
the explorer read while a build writes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import FeaturevisError
from ..core.images import atomic_write, is_atomic_temporary

try:  # POSIX; elsewhere writers are not locked against each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

DB_NAME = "catalog.sqlite"
#: Held (``flock``) by the one process writing a catalog folder.
LOCK_NAME = "catalog.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY, model TEXT NOT NULL, settings TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS layers (
    run TEXT NOT NULL, layer TEXT NOT NULL, position INTEGER NOT NULL, channels INTEGER NOT NULL,
    shape TEXT NOT NULL, PRIMARY KEY (run, layer));
CREATE TABLE IF NOT EXISTS dataset (
    run TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, file TEXT NOT NULL, PRIMARY KEY (run, idx));
CREATE TABLE IF NOT EXISTS channels (
    run TEXT NOT NULL, layer TEXT NOT NULL, channel INTEGER NOT NULL,
    vis TEXT NOT NULL, negative TEXT, diversity TEXT NOT NULL,
    activation REAL NOT NULL, negative_activation REAL, dataset_max REAL,
    seed INTEGER NOT NULL, seconds REAL NOT NULL, figures TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (run, layer, channel));
CREATE TABLE IF NOT EXISTS examples (
    run TEXT NOT NULL, layer TEXT NOT NULL, channel INTEGER NOT NULL, kind TEXT NOT NULL, rank INTEGER NOT NULL,
    image INTEGER NOT NULL, value REAL NOT NULL, box TEXT, file TEXT NOT NULL,
    PRIMARY KEY (run, layer, channel, kind, rank));
CREATE TABLE IF NOT EXISTS unit_sets (
    run TEXT NOT NULL, unit_set TEXT NOT NULL, layer TEXT NOT NULL, method TEXT NOT NULL, k INTEGER NOT NULL,
    position INTEGER NOT NULL, fit TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (run, unit_set));
CREATE TABLE IF NOT EXISTS atoms (
    run TEXT NOT NULL, unit_set TEXT NOT NULL, atom INTEGER NOT NULL, direction TEXT NOT NULL,
    PRIMARY KEY (run, unit_set, atom));
CREATE TABLE IF NOT EXISTS scores (
    run TEXT NOT NULL, layer TEXT NOT NULL, channel INTEGER NOT NULL,
    activation_ratio REAL, transfer REAL, mis REAL, path REAL, diversity REAL,
    details TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (run, layer, channel));
"""

#: (column, short label, what it means) of each fidelity score of the ``scores`` table, in the
#: order pages and exports show them (:mod:`.scores` computes them; NULL: not applicable).
SCORES: tuple[tuple[str, str, str], ...] = (
    ("activation_ratio", "activation ratio", "objective on the visualization / on the best top example"),
    ("transfer", "transfer", "other zoo models' probability of the target class (class units only)"),
    ("mis", "2AFC", "how often the visualization picks a top exemplar over a bottom one (0.5: chance)"),
    ("path", "path", "Spearman of lower-layer activations, visualization vs top examples"),
    ("diversity", "diversity", "1 - mean pairwise cosine of the diversity set's Gram matrices"),
)
SCORE_COLUMNS = tuple(key for key, _, _ in SCORES)


@dataclass
class ChannelRecord:
    """Everything stored for one rendered channel; file paths are relative to the catalog folder."""

    layer: str
    channel: int
    vis: str
    negative: str | None
    diversity: list[str]
    activation: float
    negative_activation: float | None
    dataset_max: float | None
    seed: int
    seconds: float
    figures: dict
    examples: list[dict]  # {kind: "image"|"crop", rank, image, value, box, file}


class CatalogStore:
    """The database of one catalog folder; every write is one transaction."""

    def __init__(self, folder: str | os.PathLike, *, readonly: bool = False):
        """Open the catalog in ``folder``: ``readonly`` for browsing (it must exist and be a
        catalog), else for writing (created if need be; the folder's lock is taken)."""
        self.folder = Path(folder)
        self._lock: int | None = None
        path = self.folder / DB_NAME
        try:
            if readonly:
                if not path.is_file():
                    raise FeaturevisError(f"{self.folder}: no catalog here (no {DB_NAME}); build one first")
                self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30)
                self.db.execute("SELECT run FROM runs LIMIT 1")  # garbage or another database fails here, not later
            else:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._lock = _lock(self.folder)
                self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")  # a committed shard survives a crash
                self.db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            self.close()
            raise FeaturevisError(f"{path}: not a readable catalog database ({e})") from None
        except BaseException:
            self.close()
            raise
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        if getattr(self, "db", None) is not None:
            self.db.close()
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    def __enter__(self) -> CatalogStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------
    def sweep(self, run: str) -> int:
        """Delete the temporary files a killed build left in ``run``'s folder (only files named
        as :func:`~featurevis.core.images.atomic_write` names them); returns how many."""
        if self._lock is None and fcntl is not None:
            raise FeaturevisError("sweep needs the catalog opened for writing")
        swept = 0
        for p in (self.folder / run).rglob(".*.tmp"):
            if is_atomic_temporary(p.name) and p.is_file() and not p.is_symlink():
                p.unlink(missing_ok=True)
                swept += 1
        return swept

    def write_file(self, rel: str, data: bytes) -> None:
        """Write one file atomically under the catalog folder (before its row is committed)."""
        try:
            with atomic_write(self.folder / rel) as tmp, open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise FeaturevisError(f"{self.folder / rel}: cannot write ({e.strerror or e})") from None

    def add_run(self, run: str, model: str, settings: dict) -> None:
        with self._transaction():
            self.db.execute(
                "INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?)", (run, model, json.dumps(settings), time.time())
            )

    def add_layers(self, run: str, layers: Sequence[tuple[str, int, tuple[int, ...]]]) -> None:
        with self._transaction():
            for pos, (name, n, shape) in enumerate(layers):
                self.db.execute(
                    "INSERT OR IGNORE INTO layers VALUES (?, ?, ?, ?, ?)", (run, name, pos, n, json.dumps(list(shape)))
                )

    def add_dataset(self, run: str, items: Sequence[tuple[int, str, str]]) -> None:
        with self._transaction():
            self.db.executemany("INSERT OR REPLACE INTO dataset VALUES (?, ?, ?, ?)", [(run, *it) for it in items])

    def add_channels(self, run: str, records: Iterable[ChannelRecord]) -> None:
        """Commit a shard's channels (their files already written) in one transaction."""
        now = time.time()
        try:
            with self._transaction():
                for r in records:
                    self.db.execute(
                        "INSERT OR REPLACE INTO channels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            run,
                            r.layer,
                            r.channel,
                            r.vis,
                            r.negative,
                            json.dumps(r.diversity),
                            r.activation,
                            r.negative_activation,
                            r.dataset_max,
                            r.seed,
                            r.seconds,
                            json.dumps(r.figures),
                            now,
                        ),
                    )
                    self.db.execute(
                        "DELETE FROM examples WHERE run=? AND layer=? AND channel=?", (run, r.layer, r.channel)
                    )
                    self._insert_examples(run, r.layer, r.channel, r.examples)
        except sqlite3.Error as e:
            raise FeaturevisError(f"{self.folder / DB_NAME}: cannot commit ({e})") from None

    def add_examples(self, run: str, layer: str, channel: int, examples: Sequence[dict]) -> None:
        """Add examples of more kinds (the bottom ones a score needs) to a stored channel, their
        files already written; the channel's other examples stay."""
        try:
            with self._transaction():
                self._insert_examples(run, layer, channel, examples)
        except sqlite3.Error as e:
            raise FeaturevisError(f"{self.folder / DB_NAME}: cannot commit ({e})") from None

    def _insert_examples(self, run: str, layer: str, channel: int, examples: Iterable[dict]) -> None:
        """Example rows (inside the caller's transaction); one of the same kind and rank is replaced."""
        for ex in examples:
            row = (ex["kind"], ex["rank"], ex["image"], ex["value"], json.dumps(ex.get("box")), ex["file"])
            self.db.execute(
                "INSERT OR REPLACE INTO examples VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (run, layer, channel, *row)
            )

    def add_scores(self, run: str, layer: str, channel: int, scores: dict[str, float | None], details: dict) -> None:
        """Commit one unit's scores (:data:`SCORE_COLUMNS`; ``None`` where a score does not apply)."""
        values = [scores.get(k) for k in SCORE_COLUMNS]
        try:
            with self._transaction():
                self.db.execute(
                    f"INSERT OR REPLACE INTO scores VALUES (?, ?, ?, {', '.join('?' * len(values))}, ?, ?)",
                    (run, layer, channel, *values, json.dumps(details), time.time()),
                )
        except sqlite3.Error as e:
            raise FeaturevisError(f"{self.folder / DB_NAME}: cannot commit ({e})") from None

    def add_unit_set(
        self, run: str, unit_set: str, layer: str, method: str, fit: dict, directions: Sequence[Sequence[float]]
    ) -> None:
        """Commit a fitted set of atoms of ``layer`` (``unit_set``, e.g. ``_blocks.8~nmf64``): the
        fit's figures and each atom's direction in channel space, in one transaction. Their
        renders are then stored as channels of the layer named ``unit_set``."""
        try:
            with self._transaction():
                pos = self.db.execute("SELECT COUNT(*) FROM unit_sets WHERE run=?", (run,)).fetchone()[0]
                self.db.execute(
                    "INSERT INTO unit_sets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (run, unit_set, layer, method, len(directions), pos, json.dumps(fit), time.time()),
                )
                self.db.executemany(
                    "INSERT INTO atoms VALUES (?, ?, ?, ?)",
                    [(run, unit_set, i, json.dumps([float(v) for v in d])) for i, d in enumerate(directions)],
                )
        except sqlite3.Error as e:
            raise FeaturevisError(f"{self.folder / DB_NAME}: cannot commit ({e})") from None

    def _transaction(self):
        store = self

        class _Tx:
            def __enter__(self):
                store.db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, exc, tb):
                store.db.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()

    # -- reading -----------------------------------------------------------------------------
    def runs(self) -> list[sqlite3.Row]:
        """Every run with its channels done and total, and its concept atoms done and total."""
        atoms = (
            " (SELECT COUNT(*) FROM channels c JOIN unit_sets u ON u.run = c.run AND u.unit_set = c.layer"
            " WHERE c.run = r.run) AS atoms_done,"
            " (SELECT COALESCE(SUM(k), 0) FROM unit_sets u WHERE u.run = r.run) AS atoms_total"
            if self._has_table("unit_sets")
            else " 0 AS atoms_done, 0 AS atoms_total"
        )
        return self.db.execute(
            "SELECT r.run, r.model, r.settings, r.created,"
            " (SELECT COUNT(*) FROM channels c JOIN layers l ON l.run = c.run AND l.layer = c.layer"
            " WHERE c.run = r.run) AS done,"
            " (SELECT COALESCE(SUM(channels), 0) FROM layers l WHERE l.run = r.run) AS total,"
            + atoms
            + " FROM runs r ORDER BY r.created"
        ).fetchall()

    def run(self, run: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM runs WHERE run=?", (run,)).fetchone()

    def layers(self, run: str) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT l.layer, l.channels, l.shape,"
            " (SELECT COUNT(*) FROM channels c WHERE c.run = l.run AND c.layer = l.layer) AS done"
            " FROM layers l WHERE l.run=? ORDER BY l.position",
            (run,),
        ).fetchall()

    def done_channels(self, run: str, layer: str) -> set[int]:
        rows = self.db.execute("SELECT channel FROM channels WHERE run=? AND layer=?", (run, layer))
        return {r[0] for r in rows}

    def channels(self, run: str, layer: str) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT channel, vis, activation, dataset_max FROM channels WHERE run=? AND layer=? ORDER BY channel",
            (run, layer),
        ).fetchall()

    def channel(self, run: str, layer: str, channel: int) -> sqlite3.Row | None:
        return self.db.execute(
            "SELECT * FROM channels WHERE run=? AND layer=? AND channel=?", (run, layer, channel)
        ).fetchone()

    def examples(self, run: str, layer: str, channel: int) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT e.kind, e.rank, e.image, e.value, e.box, e.file, d.name, d.file AS image_file FROM examples e"
            " LEFT JOIN dataset d ON d.run = e.run AND d.idx = e.image"
            " WHERE e.run=? AND e.layer=? AND e.channel=? ORDER BY e.kind, e.rank",
            (run, layer, channel),
        ).fetchall()

    def dataset(self, run: str) -> list[sqlite3.Row]:
        """The run's dataset images (index, name, file), in index order."""
        return self.db.execute("SELECT idx, name, file FROM dataset WHERE run=? ORDER BY idx", (run,)).fetchall()

    def unit_sets(self, run: str) -> list[sqlite3.Row]:
        """The run's sets of atoms (unit_set, layer, method, k, fit, done), in the order fitted
        (none in a catalog written before atoms were stored)."""
        if not self._has_table("unit_sets"):
            return []
        return self.db.execute(
            "SELECT u.unit_set, u.layer, u.method, u.k, u.fit,"
            " (SELECT COUNT(*) FROM channels c WHERE c.run = u.run AND c.layer = u.unit_set) AS done"
            " FROM unit_sets u WHERE u.run=? ORDER BY u.position",
            (run,),
        ).fetchall()

    def unit_set(self, run: str, unit_set: str) -> sqlite3.Row | None:
        if not self._has_table("unit_sets"):
            return None
        return self.db.execute("SELECT * FROM unit_sets WHERE run=? AND unit_set=?", (run, unit_set)).fetchone()

    def atom_directions(self, run: str, unit_set: str) -> list[list[float]]:
        """Each atom's direction in the layer's channel space, by atom index."""
        rows = self.db.execute(
            "SELECT direction FROM atoms WHERE run=? AND unit_set=? ORDER BY atom", (run, unit_set)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def _has_table(self, name: str) -> bool:
        row = self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()
        return row is not None

    def has_scores_table(self) -> bool:
        """Whether this catalog has a ``scores`` table (older ones, opened read-only, do not)."""
        return self._has_table("scores")

    def scores(self, run: str, layer: str | None = None) -> dict[tuple[str, int], sqlite3.Row]:
        """``{(layer, channel): row}`` of the stored scores of ``run`` (of one ``layer`` if given);
        empty for a catalog made before scores existed."""
        if not self.has_scores_table():
            return {}
        sql, params = "SELECT * FROM scores WHERE run=?", [run]
        if layer is not None:
            sql, params = sql + " AND layer=?", [run, layer]
        return {(r["layer"], r["channel"]): r for r in self.db.execute(sql, params)}

    def all_channels(self, run: str) -> list[sqlite3.Row]:
        """Every stored unit of ``run``: the layers' channels in layer order, then each set of
        concept atoms' atoms in the order the sets were fitted (by unit number within each)."""
        rows = self.db.execute(
            "SELECT c.* FROM channels c JOIN layers l ON l.run = c.run AND l.layer = c.layer"
            " WHERE c.run=? ORDER BY l.position, c.channel",
            (run,),
        ).fetchall()
        for u in self.unit_sets(run):
            rows += self.db.execute(
                "SELECT * FROM channels WHERE run=? AND layer=? ORDER BY channel", (run, u["unit_set"])
            ).fetchall()
        return rows

    def integrity(self) -> str:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0]


def _lock(folder: Path) -> int | None:
    """Take ``folder``'s writer lock (released when its descriptor closes, by the process ending
    too), or say which process holds it."""
    if fcntl is None:  # pragma: no cover
        return None
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise FeaturevisError(f"{folder}: cannot write there ({e.strerror or e})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise FeaturevisError(f"{folder}: {holder} is writing this catalog; run again once it has finished") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"process {os.getpid()}".encode(), 0)
    return fd
