-- The golden record, one row per person with at least one live source record: every
-- canonical attribute with its winning source and field time, the source ids of the
-- person's records, and when the profile was resolved.
{%- set keys = extension_keys() %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ c360_scope_delete() }}") }}

with attributes as (

    select
        customer_id
        {%- for attribute, column, kind in profile_attributes() %},
        max(case when attribute = '{{ attribute }}' then value end) as {{ column }},
        max(case when attribute = '{{ attribute }}' then source_system end) as {{ column }}_source,
        max(case when attribute = '{{ attribute }}' then field_time end) as {{ column }}_updated_at
        {%- endfor %}
    from {{ ref('resolved_attributes') }}
    where {{ c360_in_scope('customer_id') }}
    group by customer_id

),

records as (

    select
        customer_id,
        count(*) as source_record_count
        {%- for source, spec in keys.items() %},
        {{ c360_distinct_list(
            "case when source_system = '" ~ source ~ "'"
            ~ (" and record_id not like '" ~ spec[1] ~ "%'" if spec[1] else "")
            ~ " then record_id end") }} as {{ spec[0] }}
        {%- endfor %}
    from {{ ref('int_profile_records') }}
    where {{ c360_in_scope('customer_id') }}
    group by customer_id

)

select
    records.customer_id
    {%- for attribute, column, kind in profile_attributes() %},
    {%- if kind == 'date' %}
    try_cast(attributes.{{ column }} as date) as {{ column }},
    {%- else %}
    attributes.{{ column }},
    {%- endif %}
    attributes.{{ column }}_source,
    attributes.{{ column }}_updated_at
    {%- endfor %},
    {{ c360_string_map(extension_pairs('records')) }} as extensions,
    records.source_record_count,
    {{ dbt.current_timestamp() }} as profile_resolved_at
from records
inner join attributes
    on attributes.customer_id = records.customer_id
