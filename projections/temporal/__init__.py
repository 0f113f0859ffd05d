"""The temporal index: every version of every event's effective form, with the span of log
positions [sys_from, sys_to) in which it was in effect, plus a per-company summary at the head.
"Company C as of D known at S" is then one index range scan of C's rows, not a replay.

tables: the schema and the SQL the modules share; spans: span keys, for the chronology's
window; versions: FactVersion and CompanyTally; index: TemporalIndex, the projection that
writes them; reads: the named queries."""
