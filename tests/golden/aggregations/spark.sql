WITH `agg_orders` AS (
  SELECT
    COUNT(*) AS `orders__order_count`,
    COUNT(DISTINCT `orders`.customer_id) AS `orders__buyers`,
    AVG(CAST(`orders`.amount AS DOUBLE)) AS `orders__avg_amount`,
    PERCENTILE(CAST(`orders`.amount AS DOUBLE), 0.5) AS `orders__median_amount`,
    MIN(`orders`.amount) AS `orders__min_amount`
  FROM orders AS `orders`
)
SELECT
  COALESCE(`orders__order_count`, 0) AS `order_count`,
  COALESCE(`orders__buyers`, 0) AS `buyers`,
  `orders__avg_amount` AS `avg_amount`,
  `orders__median_amount` AS `median_amount`,
  `orders__min_amount` AS `min_amount`
FROM `agg_orders`
