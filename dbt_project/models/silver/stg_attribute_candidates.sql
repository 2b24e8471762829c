-- Every current attribute value of every customer record, with its person: the
-- candidates gold resolution chooses from. One row per current HAS_* edge.
-- `is_placeholder`: the value matches config identity.blocklist (role mailbox,
-- noreply/test address, all-zero phone) and loses to any real value.
-- `is_implausible`: the value breaks its attribute's content limits (over its length
-- limit, control characters): silver gives its edge silver.graph.IMPLAUSIBLE_CONFIDENCE
-- (the var c360.implausible_confidence), below the 0.5 of a value that only fails its
-- format. With gold.demote_implausible it loses to any other value.
-- `is_echo`: the source landed back what a c360 sync wrote (silver/echo.py); it counts
-- at the field time of the value sent and loses a tie against any other candidate.
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ c360_scope_delete() }}") }}
-- Person-scoped incremental (macros/person_scope.sql): a scoped build reads only the
-- edges of the scope's records.

with scoped_identity as (

    select node_id, person_id
    from {{ source('silver', 'identity') }}
    where {{ c360_in_scope('person_id') }}

),

current_edges as (

    select
        source_node_id as record_node_id,
        target_node_id,
        rel_type,
        source_system,
        -- An echo (a source landing back what a c360 sync wrote: silver/echo.py) counts
        -- at the field time of the value the sync sent, not at the write-back's time.
        case
            when properties like '%"echo_field_time"%'
                then coalesce({{ c360_parse_timestamp(
                    c360_json_string('properties', 'echo_field_time')) }}, updated_at)
            else updated_at
        end as field_time,
        properties like '%"echo_field_time"%' as is_echo,
        confidence,
        -- When the change that opened the edge was ingested (landing date, file, line:
        -- silver's sortable string): the last tie-break, later ingestion wins.
        ingestion_order
    from {{ source('silver', 'relationships') }}
    where is_current and substr(rel_type, 1, 4) = 'HAS_'
    {%- if c360_scoped() %}
        and source_node_id in (select node_id from scoped_identity)
    {%- endif %}

)

select
    identity.person_id as customer_id,
    nodes.node_type as attribute,
    nodes.value,
    edges.source_system,
    edges.record_node_id,
    edges.field_time,
    edges.confidence,
    edges.is_echo,
    {{ placeholder_flag('nodes.node_type', 'nodes.value') }} as is_placeholder,
    edges.confidence <= {{ c360_setting('implausible_confidence') }} as is_implausible,
    {{ source_priority_rank('edges.source_system') }} as source_priority,
    coalesce(edges.ingestion_order, '') as ingestion_order
from current_edges as edges
inner join scoped_identity as identity
    on identity.node_id = edges.record_node_id
inner join {{ source('silver', 'nodes') }} as nodes
    on nodes.node_id = edges.target_node_id

