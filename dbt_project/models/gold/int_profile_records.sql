-- The live source records of each person (records with at least one current attribute
-- value; a fully deleted record no longer speaks for anyone), with their source ids.
select
    candidates.customer_id,
    candidates.record_node_id,
    candidates.source_system,
    nodes.value as record_id
from (
    select distinct customer_id, record_node_id, source_system
    from {{ ref('stg_attribute_candidates') }}
) as candidates
inner join {{ source('silver', 'nodes') }} as nodes
    on nodes.node_id = candidates.record_node_id
