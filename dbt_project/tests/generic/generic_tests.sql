{#- SCD-2 invariant of silver relationships: at most one current edge per key. The key is
    (record_node_id, rel_type, source_system): record_node_id is the edge's source node,
    except for OWNS (company -> asset), where it is the asset (a company owns many
    assets; an asset has one current owner). -#}
{% test no_duplicate_current_edges(model, key) %}
select {{ key | join(', ') }}, count(*) as current_edges
from {{ model }}
where is_current
group by {{ key | join(', ') }}
having count(*) > 1
{% endtest %}


{#- No two rows share the combination of `columns`. -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as rows_per_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
