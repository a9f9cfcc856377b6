WITH "dim_customers__lifetime_revenue" AS (
  SELECT
    "orders"."customer_id" AS "key",
    SUM("orders".amount) AS "value"
  FROM orders AS "orders"
  GROUP BY
    "orders"."customer_id"
), "agg_orders" AS (
  SELECT
    CASE
      WHEN NOT "customers"."customer_id" IS NULL
      THEN CASE
        WHEN "customers".age < 35
        THEN 'under 35'
        WHEN "customers".age >= 35
        THEN '35+'
      END
    END AS "customers__age_band",
    SUM("orders".amount) AS "orders__revenue",
    COUNT(*) AS "orders__order_count",
    SUM(CASE WHEN "orders"."channel" = 'web' THEN "orders".amount END) AS "orders__revenue__web_revenue"
  FROM orders AS "orders"
  LEFT JOIN customers AS "customers"
    ON "orders"."customer_id" = "customers"."customer_id"
  LEFT JOIN regions AS "regions"
    ON "customers"."region_id" = "regions"."region_id"
  LEFT JOIN "dim_customers__lifetime_revenue"
    ON "dim_customers__lifetime_revenue"."key" = "customers"."customer_id"
  WHERE
    "regions"."region_name" <> 'O''Higgins'
    AND (
      NOT "customers"."customer_id" IS NULL
      AND (
        CASE
          WHEN NOT "customers"."customer_id" IS NULL
          THEN COALESCE("dim_customers__lifetime_revenue"."value", 0)
        END
      ) >= 500
    )
  GROUP BY
    CASE
      WHEN NOT "customers"."customer_id" IS NULL
      THEN CASE
        WHEN "customers".age < 35
        THEN 'under 35'
        WHEN "customers".age >= 35
        THEN '35+'
      END
    END
)
SELECT
  "customers__age_band" AS "customers.age_band",
  CAST((
    COALESCE("orders__revenue", 0)
  ) AS DOUBLE PRECISION) / NULLIF((
    COALESCE("orders__order_count", 0)
  ), 0) AS "aov",
  CAST((
    (
      COALESCE("orders__revenue__web_revenue", 0)
    )
  ) AS DOUBLE PRECISION) / NULLIF((
    (
      COALESCE("orders__revenue", 0)
    )
  ), 0) AS "web_share"
FROM "agg_orders"
ORDER BY
  "customers.age_band" ASC
