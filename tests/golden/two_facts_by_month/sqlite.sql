WITH "agg_orders" AS (
  SELECT
    "customers"."segment" AS "customers__segment",
    DATE(DATETIME("orders"."ordered_at", 'start of month')) AS "metric_time__month",
    SUM("orders".amount) AS "orders__revenue"
  FROM orders AS "orders"
  LEFT JOIN customers AS "customers"
    ON "orders"."customer_id" = "customers"."customer_id"
  GROUP BY
    "customers"."segment",
    DATE(DATETIME("orders"."ordered_at", 'start of month'))
), "agg_tickets" AS (
  SELECT
    "customers"."segment" AS "customers__segment",
    DATE(DATETIME("tickets"."opened_at", 'start of month')) AS "metric_time__month",
    COUNT(*) AS "tickets__ticket_count",
    SUM(CASE WHEN "tickets".satisfied THEN 1 ELSE 0 END) AS "tickets__satisfied"
  FROM tickets AS "tickets"
  LEFT JOIN customers AS "customers"
    ON "tickets"."customer_id" = "customers"."customer_id"
  GROUP BY
    "customers"."segment",
    DATE(DATETIME("tickets"."opened_at", 'start of month'))
), "merged" AS (
  SELECT
    "customers__segment",
    "metric_time__month",
    MAX("orders__revenue") AS "orders__revenue",
    MAX("tickets__ticket_count") AS "tickets__ticket_count",
    MAX("tickets__satisfied") AS "tickets__satisfied"
  FROM (
    SELECT
      "customers__segment",
      "metric_time__month",
      "orders__revenue",
      NULL AS "tickets__ticket_count",
      NULL AS "tickets__satisfied"
    FROM "agg_orders"
    UNION ALL
    SELECT
      "customers__segment",
      "metric_time__month",
      NULL AS "orders__revenue",
      "tickets__ticket_count",
      "tickets__satisfied"
    FROM "agg_tickets"
  ) AS "facts"
  GROUP BY
    "customers__segment",
    "metric_time__month"
)
SELECT
  "customers__segment" AS "customers.segment",
  "metric_time__month" AS "metric_time:month",
  COALESCE("orders__revenue", 0) AS "revenue",
  COALESCE("tickets__ticket_count", 0) AS "ticket_count",
  CAST((
    COALESCE("tickets__satisfied", 0)
  ) AS REAL) / NULLIF((
    COALESCE("tickets__ticket_count", 0)
  ), 0) AS "csat"
FROM "merged"
ORDER BY
  "customers.segment" ASC NULLS LAST,
  "metric_time:month" ASC NULLS LAST
