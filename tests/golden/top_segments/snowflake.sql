WITH "agg_orders" AS (
  SELECT
    "customers"."segment" AS "customers__segment",
    SUM("orders".amount) AS "orders__revenue"
  FROM orders AS "orders"
  LEFT JOIN customers AS "customers"
    ON "orders"."customer_id" = "customers"."customer_id"
  GROUP BY
    "customers"."segment"
)
SELECT
  "customers__segment" AS "customers.segment",
  COALESCE("orders__revenue", 0) AS "revenue"
FROM "agg_orders"
ORDER BY
  "revenue" DESC NULLS LAST,
  "customers.segment" ASC
LIMIT 5
