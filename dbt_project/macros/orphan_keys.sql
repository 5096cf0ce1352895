{#-
    Referential checks (issue 12 point 4): the keys a child relation uses that its parent relation
    does not have, ONE ROW PER MISSING KEY with the number of child rows that use it
    (`child_rows`, or `child_rows_sql` over those rows, e.g. `sum(events)` for a daily fact), so
    dbt's `failures` is the number of distinct missing keys and the stored failures name them.
    Null keys are not orphans (a required key is null-checked at ingestion). The parent is probed
    with NOT EXISTS, an anti join on the parent's key column: the child is read once, and only
    the orphan rows are grouped, so on clean data the aggregate runs on nothing.
-#}
{% macro orphan_keys_sql(child, key_column, parent, parent_key, child_rows_sql='count(*)') -%}
select
    child.{{ key_column }},
    {{ child_rows_sql }} as child_rows
from {{ child }} as child
where child.{{ key_column }} is not null
  and not exists (
        select 1
        from {{ parent }} as parent
        where parent.{{ parent_key }} = child.{{ key_column }}
  )
group by child.{{ key_column }}
{%- endmacro %}
