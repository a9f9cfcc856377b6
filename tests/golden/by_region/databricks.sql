WITH `agg_orders` AS (
  SELECT
    `regions`.`region_name` AS `regions__name`,
    SUM(`orders`.amount) AS `orders__revenue`
  FROM orders AS `orders`
  LEFT JOIN customers AS `customers`
    ON `orders`.`customer_id` = `customers`.`customer_id`
  LEFT JOIN regions AS `regions`
    ON `customers`.`region_id` = `regions`.`region_id`
  GROUP BY
    `regions`.`region_name`
)
SELECT
  `regions__name` AS `regions.name`,
  COALESCE(`orders__revenue`, 0) AS `revenue`
FROM `agg_orders`
ORDER BY
  `regions.name` ASC NULLS LAST
