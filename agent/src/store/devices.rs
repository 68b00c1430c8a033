//! The journal's answer to "which receipts never printed": the statement behind `devices/`
//! (whose reprint list it is), kept with the store's other SQL. The journal is the record here,
//! not a table of its own: a print's outcome is journaled anyway, and it cannot disagree with it.

use super::{Db, StoreError};

impl Db {
    /// Paid sales whose latest print attempt failed, oldest first (at most 100).
    pub(crate) fn receipts_not_printed(&mut self) -> Result<Vec<String>, StoreError> {
        // The lookup indexes hold every row once the journal's tail is indexed.
        self.index_journal(None)?;
        let mut st = self.conn.prepare_cached(
            "SELECT l.sale_id FROM journal_lookup l JOIN journal j ON j.seq = l.seq
             WHERE l.kind = 'receipt_printed' AND json_extract(j.detail, '$.printed') = 0
               AND NOT EXISTS (SELECT 1 FROM journal_lookup m JOIN journal k ON k.seq = m.seq
                   WHERE m.sale_id = l.sale_id AND m.kind = 'receipt_printed'
                     AND json_extract(k.detail, '$.printed') = 1 AND m.seq > l.seq)
             GROUP BY l.sale_id ORDER BY MIN(l.seq) LIMIT 100",
        )?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}
