-- name: upload_lineage
-- description: Every row one orders upload produced: its clean rows and its quarantined rows with their reasons.
-- parameters: upload_id, upload_id
SELECT zone, order_id, source_record, reasons, contract_version
FROM (
    SELECT
        'clean' AS zone,
        order_id,
        CAST(NULL AS bigint) AS source_record,
        CAST(NULL AS varchar) AS reasons,
        _contract_version AS contract_version
    FROM clean.orders
    WHERE _upload_id = ?
    UNION ALL
    SELECT
        'quarantine' AS zone,
        order_id,
        _source_record AS source_record,
        array_join(_errors, ',') AS reasons,
        _contract_version AS contract_version
    FROM quarantine.orders
    WHERE _upload_id = ?
) AS lineage
ORDER BY zone, source_record, order_id
