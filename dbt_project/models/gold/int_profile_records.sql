-- The live source records of each person (records with at least one current attribute
-- value; a fully deleted record no longer speaks for anyone), with their source ids:
-- the record id is the part of `customer:<source>:<record id>` after the source.
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ c360_scope_delete() }}") }}
select distinct
    customer_id,
    record_node_id,
    source_system,
    substr(record_node_id, length(source_system) + 11) as record_id
from {{ ref('stg_attribute_candidates') }}
where {{ c360_in_scope('customer_id') }}
