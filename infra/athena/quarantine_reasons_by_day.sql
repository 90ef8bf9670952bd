-- name: quarantine_reasons_by_day
-- description: Quarantined rows per dataset, ingest day and reason code (a row with several reasons counts once under each).
SELECT dataset, ingest_date, reason, count(*) AS quarantined_rows
FROM (
    SELECT 'orders' AS dataset, ingest_date, reason
    FROM quarantine.orders
    CROSS JOIN UNNEST(_errors) AS r (reason)
    UNION ALL
    SELECT 'customers' AS dataset, ingest_date, reason
    FROM quarantine.customers
    CROSS JOIN UNNEST(_errors) AS r (reason)
) AS q
GROUP BY dataset, ingest_date, reason
ORDER BY dataset, ingest_date, reason
