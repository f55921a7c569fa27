"""Engines, write transactions and Alembic migrations run in code (no alembic.ini needed).

SQLite: WAL journal (readers never wait for the writer), ``synchronous=NORMAL`` (a committed transaction
survives a killed process; only an OS crash can lose the last ones), foreign keys on, and write
transactions opened with ``BEGIN IMMEDIATE`` so two writers queue on the lock instead of deadlocking.
PostgreSQL and other servers: plain transactions; answers lock their user row with ``SELECT ... FOR UPDATE``.
On PostgreSQL a statement waits at most ``lock_timeout_ms`` for a row lock (set as a connect option: no
round trip), so a long-held lock fails requests with 503 instead of filling every database thread.
Pooled connections are reused last-in first-out (a few stay hot) and tested with a round trip before use
only after sitting idle (``PING_AFTER_IDLE_S``), not on every checkout as ``pool_pre_ping`` would.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from importlib import resources
from typing import Callable, Iterator, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from preflm.serve.errors import Unavailable
from preflm.serve.settings import LOCK_TIMEOUT_MS

T = TypeVar("T")
WRITE_OPTION = "preflm_write"
DB_THREADS = 8
PING_AFTER_IDLE_S = 5.0
SHUTDOWN_WAIT_S = 10.0
_EXECUTORS: "weakref.WeakKeyDictionary[Engine, ThreadPoolExecutor]" = weakref.WeakKeyDictionary()
_CLOSED: "weakref.WeakSet[Engine]" = weakref.WeakSet()
_EXECUTORS_LOCK = threading.Lock()
_SQLITE_WRITERS: "weakref.WeakKeyDictionary[Engine, threading.Lock]" = weakref.WeakKeyDictionary()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, pool_size: int = 16, lock_timeout_ms: int = LOCK_TIMEOUT_MS) -> Engine:
    """An engine for any SQLAlchemy URL, with the SQLite settings above when the URL is SQLite
    (``lock_timeout_ms``: PostgreSQL's ``lock_timeout``; 0 waits for ever)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect_args = {}
        if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("psycopg", "psycopg2"):
            options = " ".join(filter(None, [parsed.query.get("options"), f"-c lock_timeout={int(lock_timeout_ms)}"]))
            connect_args["options"] = options
            parsed = parsed.difference_update_query(["options"])
        engine = create_engine(parsed, pool_size=pool_size, max_overflow=pool_size, pool_use_lifo=True,
                               connect_args=connect_args)
        _ping_after_idle(engine)
        return engine
    if parsed.database in (None, "", ":memory:"):
        raise ValueError("the service needs an SQLite file (sqlite:///path.db), not an in-memory database")
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "BEGIN")

    _SQLITE_WRITERS[engine] = threading.Lock()
    return engine


def _ping_after_idle(engine: Engine) -> None:
    """Test a pooled connection before handing it out when it sat idle ``PING_AFTER_IDLE_S`` or longer,
    and replace it when the test fails (the server restarted or dropped it meanwhile).

    A busy server reuses its connections within milliseconds and pays no round trip for the test; a
    connection that breaks while in use fails that request (503, retry) and SQLAlchemy then replaces
    every connection of the pool that is older than the failure.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, record, proxy):
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as err:
            raise DisconnectionError(f"pooled connection failed its test: {err}") from err


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it takes the write lock at BEGIN.

    Writers of one process queue on a thread lock first: SQLite's own busy handler sleeps in steps of
    up to 100 ms, which would dominate latency when many threads write at once. The lock is taken by
    threads only (async routes run writes on the writer thread of :func:`run_db`), never on the event loop.
    """
    lock = _SQLITE_WRITERS.get(engine)
    if lock is None:
        with engine.connect() as conn:
            with conn.begin():
                yield conn
        return
    with lock, engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """Reads. On SQLite one transaction (one snapshot for all its statements). On a server, autocommit:
    under READ COMMITTED every statement sees its own snapshot anyway, and no BEGIN/ROLLBACK round trips."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            with conn.begin():
                yield conn
        else:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")


async def run_db(engine: Engine, function: Callable[..., T], *args, write: bool = False) -> T:
    """Run blocking database work from an async route (``write``: the work opens a write transaction).

    SQLite reads run inline on the event loop: they are in-process, take tens of microseconds and never
    wait (WAL), so a thread hop would cost more than the work. SQLite writes run on one dedicated writer
    thread: SQLite serializes writers anyway, and a writer can wait on the database lock (another process,
    the CLI, a checkpoint's fsync) for up to the busy timeout, which must not freeze the loop. Work on a
    database server waits on the network, so it runs in a small thread pool (``DB_THREADS`` threads per
    process) and the loop serves other requests meanwhile; a plain executor, whose hand-off costs less
    CPU than anyio's worker threads. A route makes one such call per request where it can.
    Raises :class:`Unavailable` once :func:`close` has run.
    """
    sqlite = is_sqlite(engine)
    if sqlite and not write:
        if engine in _CLOSED:
            raise Unavailable("the service is shutting down: its database is closed")
        return function(*args)
    with _EXECUTORS_LOCK:
        if engine in _CLOSED:
            raise Unavailable("the service is shutting down: its database is closed")
        executor = _EXECUTORS.get(engine)
        if executor is None:
            threads, name = (1, "preflm-sqlite-writer") if sqlite else (DB_THREADS, "preflm-db")
            executor = _EXECUTORS[engine] = ThreadPoolExecutor(threads, thread_name_prefix=name)
    return await asyncio.get_running_loop().run_in_executor(executor, function, *args)


def close(engine: Engine, wait_s: float = SHUTDOWN_WAIT_S) -> None:
    """Stop the engine's database threads and close its connections; later :func:`run_db` calls fail fast.

    Queued work is cancelled; work in progress gets up to ``wait_s`` seconds to finish (a statement waits
    on a PostgreSQL row lock for at most ``lock_timeout``), after which the threads are left to end alone.
    """
    with _EXECUTORS_LOCK:
        _CLOSED.add(engine)
        executor = _EXECUTORS.pop(engine, None)
    if executor is not None:
        stopper = threading.Thread(target=executor.shutdown, kwargs={"wait": True, "cancel_futures": True},
                                   name="preflm-db-shutdown", daemon=True)
        stopper.start()
        stopper.join(wait_s)
    engine.dispose()


def alembic_config():
    """Alembic configuration pointing at the migrations shipped inside the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("preflm.serve") / "migrations"))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` (idempotent; safe to call on every start)."""
    from alembic import command

    config = alembic_config()
    with engine.connect() as conn:
        with conn.begin():
            config.attributes["connection"] = conn
            command.upgrade(config, revision)


def check_database(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
