-- name: daily_revenue_by_currency
-- description: Revenue of clean orders per order day and currency, net of discounts.
SELECT
    order_date,
    currency,
    count(*) AS orders,
    sum(quantity) AS units,
    sum(total_amount) AS revenue
FROM clean.orders
GROUP BY order_date, currency
ORDER BY order_date, currency
