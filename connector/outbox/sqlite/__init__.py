"""SQLite, behind one door. Everything the outbox does only on SQLite, for speed or because
SQLite needs it, is in this package: the write gate and the transaction it guards, the WAL
checkpoint thread and what a fork must do (`store`), the request path's own write connection
and statements run on the driver's cursor (`cursor`). The rest of the outbox speaks SQLAlchemy
to either store and asks here (`is_file`, `writing`, `Statement`, `RowsInsert`) where SQLite
takes a shortcut.

No private attribute of SQLAlchemy or of the sqlite3 module is read here: statements are
compiled with `compile()` (its SQL text and `binds`) and run with the DBAPI's `execute` and
`executemany`."""

from connector.outbox.sqlite.cursor import RowsInsert, Statement, writing
from connector.outbox.sqlite.store import checkpoint, is_file, make

__all__ = ["RowsInsert", "Statement", "checkpoint", "is_file", "make", "writing"]
