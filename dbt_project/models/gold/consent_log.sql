-- Every e-mail consent change of every person, in every source: the value (`true` /
-- `false`), the landed value it came from, its source and field time, when that source's
-- value ended (`valid_to`: a newer value, a clear or a delete) and when the person's
-- consent was next changed by any source (`superseded_at`).
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ c360_scope_delete() }}") }}
with changes as (

    select
        identity.person_id as customer_id,
        edges.source_node_id as record_node_id,
        edges.source_system,
        nodes.value as email_consent,
        {{ c360_json_string('edges.properties', 'raw') }} as raw_value,
        edges.valid_from as field_time,
        edges.valid_to,
        edges.is_current
    from {{ source('silver', 'relationships') }} as edges
    inner join {{ source('silver', 'nodes') }} as nodes
        on nodes.node_id = edges.target_node_id
    inner join {{ source('silver', 'identity') }} as identity
        on identity.node_id = edges.source_node_id
    where nodes.node_type = 'emailConsent'
        and {{ c360_in_scope('identity.person_id') }}

)

select
    changes.*,
    lead(field_time) over (
        partition by customer_id
        order by field_time, {{ source_priority_rank('source_system') }}, record_node_id
    ) as superseded_at
from changes
