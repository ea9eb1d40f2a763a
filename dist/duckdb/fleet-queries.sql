-- 1. Top talkers across all nodes.
SELECT ip, sum(requests) AS requests, count(DISTINCT host) AS nodes
FROM read_parquet('fleet/**/minutes-*.parquet', hive_partitioning = true)
GROUP BY ip
ORDER BY requests DESC, ip
LIMIT 20;

-- 2. Below every node's threshold, above the fleet's: clients whose busiest minute on any one
--    node stays under 100 requests, while their busiest minute across the fleet reaches 100.
SELECT ip, max(node_peak) AS busiest_minute_on_one_node, max(fleet) AS busiest_minute_fleet_wide
FROM (
    SELECT ip, minute, max(requests) AS node_peak, sum(requests) AS fleet
    FROM (
        SELECT ip, host, minute, sum(requests) AS requests
        FROM read_parquet('fleet/**/minutes-*.parquet', hive_partitioning = true)
        GROUP BY ip, host, minute
    )
    GROUP BY ip, minute
)
GROUP BY ip
HAVING max(node_peak) < 100 AND max(fleet) >= 100
ORDER BY busiest_minute_fleet_wide DESC, ip;

-- 3. Error share by node.
SELECT host, sum(requests) AS requests,
       round(sum(errors_4xx + errors_5xx) / sum(requests), 4) AS error_share,
       round(sum(page_errors) / sum(pages), 4) AS page_error_share
FROM read_parquet('fleet/**/minutes-*.parquet', hive_partitioning = true)
GROUP BY host
ORDER BY host;
