"""Domain operations: plain functions of (session, actor, ...) with no Flask import.

They check rules, change rows, flush and write the audit trail; the caller owns the one commit."""
