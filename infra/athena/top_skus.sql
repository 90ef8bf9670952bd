-- name: top_skus
-- description: The ten best-selling SKUs by units over all clean orders.
SELECT
    product_sku,
    sum(quantity) AS units,
    count(DISTINCT order_id) AS orders,
    count(DISTINCT currency) AS currencies
FROM clean.orders
GROUP BY product_sku
ORDER BY units DESC, product_sku
LIMIT 10
