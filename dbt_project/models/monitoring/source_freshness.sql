-- Newest field change per source system, hours since, and STALE / OK against the
-- source's window (config freshness: stale_after_hours, per-source overrides). A source
-- that syncs but delivers nothing new goes stale too; one with no data at all is STALE.
-- Event times in the future (skewed device clocks) are not counted as fresh.
{%- set windows = c360_setting('stale_after_hours') %}

with configured as (

    {%- for source, hours in windows.items() %}
    select '{{ source }}' as source_system, cast({{ hours }} as double) as stale_after_hours
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

newest as (

    select source_system, max(field_time) as newest_event_at
    from {{ source('silver', 'field_changes') }}
    where field_time <= {{ dbt.current_timestamp() }}
    group by source_system

)

select
    configured.source_system,
    newest.newest_event_at,
    {{ c360_hours_between('newest.newest_event_at', dbt.current_timestamp()) }} as hours_since,
    configured.stale_after_hours,
    case
        when newest.newest_event_at is null then 'STALE'
        when {{ c360_hours_between('newest.newest_event_at', dbt.current_timestamp()) }}
            > configured.stale_after_hours then 'STALE'
        else 'OK'
    end as status,
    {{ dbt.current_timestamp() }} as checked_at
from configured
left join newest
    on newest.source_system = configured.source_system
