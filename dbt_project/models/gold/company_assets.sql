-- Customer -> WORKS_AT -> company -> OWNS -> asset, current edges only: a customer
-- whose employer changed does not keep the old company's assets.
with works_at as (

    select
        identity.person_id as customer_id,
        edges.source_node_id as record_node_id,
        edges.source_system,
        edges.target_node_id as company_node_id,
        edges.valid_from as works_at_since
    from {{ source('silver', 'relationships') }} as edges
    inner join {{ source('silver', 'identity') }} as identity
        on identity.node_id = edges.source_node_id
    where edges.is_current and edges.rel_type = 'WORKS_AT'

),

owns as (

    select
        source_node_id as company_node_id,
        target_node_id as asset_node_id,
        valid_from as owned_since
    from {{ source('silver', 'relationships') }}
    where is_current and rel_type = 'OWNS'

)

select
    works_at.customer_id,
    works_at.record_node_id,
    works_at.source_system,
    works_at.company_node_id,
    {{ c360_json_string('company.properties', 'name') }} as company_name,
    works_at.works_at_since,
    owns.asset_node_id,
    {{ c360_json_string('asset.properties', 'name') }} as asset_name,
    {{ c360_json_string('asset.properties', 'serial_number') }} as serial_number,
    {{ c360_json_string('asset.properties', 'status') }} as asset_status,
    owns.owned_since
from works_at
inner join owns
    on owns.company_node_id = works_at.company_node_id
-- Only the entity nodes of each kind are read (pushed down into the Delta scan): the
-- value nodes, most of the table, never match these joins.
left join (
    select node_id, properties from {{ source('silver', 'nodes') }} where node_type = 'company'
) as company
    on company.node_id = works_at.company_node_id
left join (
    select node_id, properties from {{ source('silver', 'nodes') }} where node_type = 'asset'
) as asset
    on asset.node_id = owns.asset_node_id
